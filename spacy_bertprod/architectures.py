"""Registered, versioned architectures of the serving path: thin constructors over the layers.

Nothing here imports torch. The trainable `spacy_bertprod.TorchTransformer.v2` lives with its
backend (backends/torch.py) and is found through spaCy's registry (setup.cfg's entry points).
"""

from typing import List

from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ragged

from .listener import (
    build_listener,
    build_pooling_listener,
    build_scalar_weighting_listener,
    scalar_weight,
)
from .span_getters import SpanGetter
from .transformer_model import TransformerModel


@registry.architectures("spacy_bertprod.OnnxTransformer.v1")
def create_onnx_transformer(
    get_spans: SpanGetter,
    providers: List[str] = ["CPUExecutionProvider"],
    intra_op_num_threads: int = 0,
    inter_op_num_threads: int = 1,
    allow_spinning: bool = True,
) -> Model:
    """An inference-only encoder on ONNX Runtime; its model.onnx is written by `compress`.

    intra_op_num_threads=0 lets ONNX Runtime use one thread per physical core; allow_spinning
    is ONNX Runtime's session.intra_op.allow_spinning.
    """
    from .backends.onnx import OnnxEncoder

    return TransformerModel(
        OnnxEncoder(providers, intra_op_num_threads, inter_op_num_threads, allow_spinning), get_spans
    )


@registry.architectures("spacy_bertprod.TransformerListener.v1")
def create_transformer_listener(
    pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*"
) -> Model:
    """Token vectors from an upstream bertprod_transformer; arguments as in
    spacy-transformers.TransformerListener.v1 (and the same weights layout)."""
    return build_listener(pooling, grad_factor=grad_factor, upstream=upstream)


@registry.architectures("spacy_bertprod.LastLayerListener.v1")
def create_last_layer_listener(
    width: int, pooling: Model[Ragged, Floats2d], upstream: str = "*", grad_factor: float = 1.0
) -> Model:
    """Token vectors from an upstream bertprod_transformer; arguments and weights layout as in
    spacy-curated-transformers.LastTransformerLayerListener.v1 (compress writes it for curated pipelines)."""
    listener = build_pooling_listener(pooling, grad_factor=grad_factor, upstream=upstream)
    listener.set_dim("nO", width)
    return listener


@registry.architectures("spacy_bertprod.ScalarWeightingListener.v1")
def create_scalar_weighting_listener(
    width: int, weighting: Model, pooling: Model[Ragged, Floats2d], upstream: str = "*", grad_factor: float = 1.0
) -> Model:
    """As spacy-curated-transformers.ScalarWeightingListener.v1 (same arguments, same weights layout)."""
    listener = build_scalar_weighting_listener(weighting, pooling, grad_factor=grad_factor, upstream=upstream)
    listener.set_dim("nO", width)
    return listener


@registry.architectures("spacy_bertprod.ScalarWeight.v1")
def create_scalar_weight(
    num_layers: int, dropout_prob: float = 0.1, mixed_precision: bool = False, grad_scaler_config: dict = {}
) -> Model:
    """As spacy-curated-transformers.ScalarWeight.v1 at inference, in numpy (the training-only
    arguments are accepted and unused)."""
    return scalar_weight(num_layers)
