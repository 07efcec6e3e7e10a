"""What both encoder backends share, and how the component finds a backend's saving and loading.

Each backend is a thinc layer mapping an `EncoderBatch` to hidden states, plus an IO object
(`OnnxIO`, `TorchIO`) that initialises, saves and loads its weights as real files (never
pickles). The IO classes are registered in spaCy's `misc` registry under the layer's name, so the
torch-free serving path (component, transformer model) never imports the torch backend: it is
found through the registry, as spaCy finds every architecture.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy
from spacy.util import registry
from thinc.api import Model

from ..errors import InvalidInput


@dataclass
class EncoderBatch:
    """A padded batch of wordpiece sequences."""

    input_ids: numpy.ndarray  # int64 (batch, length)
    attention_mask: numpy.ndarray  # int64 (batch, length)
    # Further graph inputs by name (the token alignment of heads in the graph, graph_heads.py).
    extra: Dict[str, numpy.ndarray] = field(default_factory=dict)


# Heads in the ONNX graph (compress --heads-in-graph, graph_heads.py): the token alignment inputs,
# and one scores output per component, named HEAD_OUTPUT_PREFIX + component.
TOKEN_WEIGHTS = "token_weights"
TOKEN_MASK = "token_mask"
POOL_WEIGHTS = "pool_weights"
POOL_ROWS = ("first", "last", "mean")  # the rows of pool_weights
HEAD_INPUTS = (TOKEN_WEIGHTS, TOKEN_MASK, POOL_WEIGHTS)
HEAD_OUTPUT_PREFIX = "bertprod_head."


# The graph output with every layer's hidden states, (batch, sequence, layers + 1, width), present
# when a listener weights or reads all layers (compress --all-layers for curated pipelines).
ALL_LAYERS_OUTPUT = "hidden_states"


def head_output_name(component: str) -> str:
    return HEAD_OUTPUT_PREFIX + component


def head_components(output_names) -> List[str]:
    """The components whose scores an ONNX graph computes, from its output names."""
    return [n[len(HEAD_OUTPUT_PREFIX) :] for n in output_names if n.startswith(HEAD_OUTPUT_PREFIX)]


# The trainable architecture's registered name (what configs write), and the name pipelines saved
# before its arguments were versioned carry (still registered, same function).
TORCH_TRANSFORMER = "spacy_bertprod.TorchTransformer.v2"
TORCH_TRANSFORMER_V1 = "spacy_bertprod.TorchTransformer.v1"
ONNX_ENCODER = "bertprod_onnx_encoder"
ONNX_SESSION = "onnx"  # the ONNX encoder layer's attr holding its OnnxSession
TORCH_ENCODER = "bertprod_torch_encoder"
# Registered names (spaCy's misc registry) of each encoder layer's IO class.
BACKEND_IO = {ONNX_ENCODER: "spacy_bertprod.OnnxEncoderIO.v1", TORCH_ENCODER: "spacy_bertprod.TorchEncoderIO.v1"}
# Where a backend leaves the values of extra training losses (e.g. layer distillation) for the
# component to report: {loss name: summed value since the last pop}.
EXTRA_LOSSES_ATTR = "extra_loss_values"
# The torch encoder layer's attrs: its pretrained folder and settings, and its extra loss objects.
PRETRAINED = "pretrained"
EXTRA_LOSSES = "extra_losses"


def backend_io(encoder: Model):
    """The initialise/save/load helper for an encoder layer (see OnnxIO and TorchIO)."""
    if encoder.name not in BACKEND_IO:
        raise InvalidInput(f"Unknown bertprod encoder layer '{encoder.name}'.")
    return registry.misc.get(BACKEND_IO[encoder.name])(encoder)


def is_trainable(encoder: Optional[Model]) -> bool:
    return encoder is not None and encoder.name == TORCH_ENCODER


def pretrained_folder(encoder: Model) -> Optional[str]:
    """The local model folder a torch encoder is initialised from (None for ONNX)."""
    return (encoder.attrs.get(PRETRAINED) or {}).get("name")


def pop_extra_losses(encoder: Model) -> Dict[str, float]:
    """The extra training losses the encoder computed since the last call, by name."""
    return encoder.attrs.pop(EXTRA_LOSSES_ATTR, None) or {}
