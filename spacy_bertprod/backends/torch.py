"""A Hugging Face encoder in thinc's PyTorchWrapper: the trainable backend.

Loads only from a local directory (no hub downloads), and stores its weights as safetensors
files in the pipeline folder: loading a pipeline never unpickles anything.

Training objectives beyond the heads' (e.g. distill/layers.py's intermediate-layer loss) plug in
as *extra losses*: objects that see the encoder's hidden states of every layer and return a loss
tensor, added to the heads' gradient in one backward pass. This backend knows nothing of what
they compute; the architecture below builds them from registered functions.
"""

import functools
import inspect
import json
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Sequence, Union

import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, CupyOps, Model, PyTorchWrapper_v3, get_current_ops, torch2xp, xp2torch
from thinc.shims.pytorch_grad_scaler import PyTorchGradScaler

from ..depth import train_at_random_depth
from ..errors import InvalidInput, MissingFile
from ..span_getters import SpanGetter
from ..tokenization import WordpieceTokenizer
from ..transformer_model import TransformerModel
from ..word_elimination import eliminate_word_vectors
from .base import (
    BACKEND_IO,
    EXTRA_LOSSES,
    EXTRA_LOSSES_ATTR,
    PRETRAINED,
    TORCH_ENCODER,
    TORCH_TRANSFORMER,
    TORCH_TRANSFORMER_V1,
    EncoderBatch,
)
from .forward_wrap import wrap_forward
from .hf_folder import check_model_type, load_pretrained

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# The registered function that builds the layer-distillation loss (distill/layers.py).
LAYER_DISTILLATION = "spacy_bertprod.layer_distillation.v1"
# Set on the encoder layer when mixed_precision asks for bfloat16 training on CPU.
CPU_BFLOAT16 = "cpu_bfloat16"
RANDOM_DEPTH = "random_depth"  # share of training steps run through a random prefix of the layers
WORD_RETENTION = "word_retention"  # per layer, the share of word vectors it sees (word_elimination.py)


class ExtraLoss(Protocol):
    """A training loss on the encoder's hidden states, next to the heads' (see the module docstring)."""

    name: str  # reported as losses["<component>_<name>"]
    needs_attentions: bool  # the encoder then also returns its attention maps (eager attention)

    def check(self, module: torch.nn.Module) -> None:
        """Raise a clear error before training when the loss cannot work with this encoder."""

    def __call__(
        self,
        module: torch.nn.Module,
        batch: EncoderBatch,
        hidden_states: Sequence[torch.Tensor],
        attentions: Optional[Sequence[torch.Tensor]] = None,
    ) -> torch.Tensor:
        """The loss of one batch (a scalar tensor); hidden_states[0] is the embeddings' output,
        attentions[i] layer i's (batch, heads, query, key) probabilities when asked for."""


@registry.architectures(TORCH_TRANSFORMER)
def create_torch_transformer(
    name: str,
    get_spans: SpanGetter,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    layer_teacher: str = "",
    layer_weight: float = 1.0,
    layer_attention_weight: float = 0.0,
    random_depth: float = 0.0,
    word_retention: Union[str, List[float]] = "",
) -> Model:
    """A trainable Hugging Face encoder (any family in families.py) loaded from the local directory `name`.

    Same settings as spacy-transformers.TransformerModel.v3; `name` must be a directory.
    `layer_teacher` (a fine-tuned teacher pipeline or model directory; empty: off) adds
    TinyBERT's intermediate-layer distillation loss, times `layer_weight`, to training, and with
    `layer_attention_weight` > 0 the mapped layers' attention maps too (KL to the teacher's).
    `random_depth` > 0 runs that share of the training steps through a random prefix of the
    layers, so that `compress --depth K` can later cut the trained pipeline to K layers (depth.py).
    `word_retention` ("1,0.6,0.3" or [1, 0.6, 0.3]: per layer, the share of each doc's word vectors
    it sees) trains, evaluates and exports with PoWER-BERT's word-vector elimination, for text
    classification (word_elimination.py).
    """
    if not 0.0 <= random_depth <= 1.0:
        raise InvalidInput(f"random_depth must be between 0 and 1 (a share of the training steps), not {random_depth}.")
    if layer_weight < 0 or layer_attention_weight < 0:
        raise InvalidInput(
            f"layer_weight ({layer_weight}) and layer_attention_weight ({layer_attention_weight}) must be 0 or more."
        )
    if layer_teacher and word_retention:
        raise InvalidInput(
            "layer_teacher (layer distillation) needs every layer's hidden states for every wordpiece, and "
            "word_retention drops word vectors: distil first, then train the student with word_retention."
        )
    extra_losses = []
    if layer_teacher:
        make = registry.misc.get(LAYER_DISTILLATION)
        extra_losses.append(
            make(teacher=str(layer_teacher), weight=float(layer_weight), attention_weight=float(layer_attention_weight))
        )
    encoder = TorchEncoder(
        mixed_precision=mixed_precision, grad_scaler_config=grad_scaler_config, extra_losses=extra_losses
    )
    encoder.attrs[RANDOM_DEPTH] = float(random_depth)
    encoder.attrs[WORD_RETENTION] = word_retention if isinstance(word_retention, str) else list(word_retention)
    encoder.attrs[PRETRAINED] = {
        "name": name,
        "tokenizer_config": dict(tokenizer_config),
        "transformer_config": dict(transformer_config),
    }
    return TransformerModel(encoder, get_spans)


# Pipelines saved before v2 carry the v1 name: the same function, so they keep loading (v1
# started with the first six arguments and grew the other five in place).
registry.architectures(TORCH_TRANSFORMER_V1)(create_torch_transformer)


def TorchEncoder(
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    extra_losses: Sequence[ExtraLoss] = (),
) -> Model:
    """A thinc layer around a HF encoder: padded wordpieces -> (batch, length, width) hidden states.

    The torch module is a placeholder until `TorchIO.initialize` or `TorchIO.load` (from_disk)
    installs the real one, so building the pipeline from its config is cheap and does not need
    the original model directory. `extra_losses` are kept in attrs as objects msgpack cannot
    serialise, so thinc leaves them out of the saved model: the config that loads a pipeline
    decides them.
    """
    grad_scaler = PyTorchGradScaler(**(grad_scaler_config or {}))
    # thinc's mixed precision is CUDA float16 autocast; on CPU it would do nothing, so there
    # mixed_precision means bfloat16 autocast for the training steps (see train_in_bfloat16).
    on_cpu = not isinstance(get_current_ops(), CupyOps)
    model = PyTorchWrapper_v3(
        torch.nn.Module(),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        mixed_precision=mixed_precision and not on_cpu,
        grad_scaler=grad_scaler,
        # Weights travel as safetensors files written by the component, never via torch.save.
        serialize_model=lambda module: b"",
        deserialize_model=lambda module, data, device: module,
    )
    model.name = TORCH_ENCODER
    model.attrs[CPU_BFLOAT16] = bool(mixed_precision and on_cpu)
    if extra_losses:
        model.attrs[EXTRA_LOSSES] = list(extra_losses)
    return model


def hf_module(encoder: Model) -> torch.nn.Module:
    """The torch module inside a thinc PyTorchWrapper layer (ours, or spacy-curated-transformers')."""
    return encoder.shims[0]._model


def _set_module(encoder: Model, module: torch.nn.Module) -> None:
    shim = encoder.shims[0]
    module.to(shim.device)
    if encoder.attrs.get(CPU_BFLOAT16) and shim.device.type == "cpu":
        train_in_bfloat16(module)
    if encoder.attrs.get(WORD_RETENTION):
        eliminate_word_vectors(module, encoder.attrs[WORD_RETENTION], "The transformer (word_retention)")
    if encoder.attrs.get(RANDOM_DEPTH):
        train_at_random_depth(module, encoder.attrs[RANDOM_DEPTH])
    shim._model = module
    encoder.set_dim("nO", int(module.config.hidden_size), force=True)


def train_in_bfloat16(module: torch.nn.Module) -> None:
    """Run the module's training forward passes under CPU bfloat16 autocast.

    On CPUs with bfloat16 matrix units (AMX, AVX512-BF16) a 12-layer encoder's training step gets
    several times faster; the weights, optimizer state and gradients stay float32 (autocast only
    lowers the matmuls), and inference, evaluation and ONNX export (eval mode) stay float32.
    Outputs are cast back to float32 so the heads and extra losses see the usual dtype.
    """
    if not cpu_has_bfloat16():
        warnings.warn(
            "mixed_precision = true trains in bfloat16 on CPU, and this CPU has no bfloat16 "
            "instructions (amx_bf16 / avx512_bf16): training will be slower, not faster. "
            "Set [components.transformer.model] mixed_precision = false here."
        )
    wrap_forward(module, _forward_in_bfloat16, "bfloat16")


def _forward_in_bfloat16(module: torch.nn.Module, inner, *args, **kwargs):
    if not (module.training and torch.is_grad_enabled()):
        return inner(*args, **kwargs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = inner(*args, **kwargs)
    return _as_float32(output)


def _as_float32(output: Any) -> Any:
    for key, value in list(output.items()):
        if torch.is_tensor(value):
            output[key] = value.float()
        elif isinstance(value, tuple):
            output[key] = tuple(item.float() if torch.is_tensor(item) else item for item in value)
    return output


@functools.lru_cache(maxsize=1)
def cpu_has_bfloat16() -> bool:
    """Whether the CPU has bfloat16 matrix instructions (Linux /proc/cpuinfo; False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def accepts_token_type_ids(module: torch.nn.Module) -> bool:
    return "token_type_ids" in inspect.signature(module.forward).parameters


def _convert_inputs(model: Model, batch: EncoderBatch, is_train: bool):
    shim = model.shims[0]
    kwargs = {
        "input_ids": xp2torch(batch.input_ids, device=shim.device),
        "attention_mask": xp2torch(batch.attention_mask, device=shim.device),
    }
    if accepts_token_type_ids(shim._model):
        kwargs["token_type_ids"] = torch.zeros_like(kwargs["input_ids"])
    if is_train and model.attrs.get(EXTRA_LOSSES):
        kwargs["output_hidden_states"] = True
        if any(getattr(loss, "needs_attentions", False) for loss in model.attrs[EXTRA_LOSSES]):
            kwargs["output_attentions"] = True
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


def _convert_outputs(model: Model, inputs_outputs, is_train: bool):
    batch, output = inputs_outputs
    hidden = output.last_hidden_state
    extra = _extra_loss(model, batch, output) if is_train else None

    def backprop(d_hidden) -> ArgsKwargs:
        d_hidden = xp2torch(d_hidden, device=hidden.device)
        if extra is None:
            return ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden,)})
        # One backward pass for the heads' gradient and the extra losses.
        return ArgsKwargs(args=((hidden, extra),), kwargs={"grad_tensors": (d_hidden, torch.ones_like(extra))})

    return torch2xp(hidden.float()), backprop


def _extra_loss(model: Model, batch: EncoderBatch, output) -> Optional[torch.Tensor]:
    """The sum of the extra losses on this batch; each one's value is left for the component."""
    losses: List[ExtraLoss] = model.attrs.get(EXTRA_LOSSES) or []
    if not losses:
        return None
    module = model.shims[0]._model
    values = model.attrs.setdefault(EXTRA_LOSSES_ATTR, {})
    total = None
    for loss in losses:
        value = loss(module, batch, output.hidden_states, getattr(output, "attentions", None))
        values[loss.name] = values.get(loss.name, 0.0) + float(value.detach())
        total = value if total is None else total + value
    return total


@registry.misc(BACKEND_IO[TORCH_ENCODER])
class TorchIO:
    """Initialises the torch encoder from its pretrained directory; saves and loads it as
    config.json + model.safetensors."""

    def __init__(self, encoder: Model):
        self.encoder = encoder

    def initialize(self) -> WordpieceTokenizer:
        """Load the pretrained encoder named in the config; returns its tokenizer. Extra losses
        check the encoder here, so a wrong setting fails before training, not at its first step."""
        settings = self.encoder.attrs[PRETRAINED]
        if not settings["name"]:
            raise InvalidInput(
                "Set the transformer's [components.<name>.model.name] to a local model directory "
                "(config.json, tokenizer, model.safetensors) before initializing."
            )
        module, tokenizer = load_pretrained(
            settings["name"], settings["tokenizer_config"], settings["transformer_config"]
        )
        _set_module(self.encoder, module)
        for loss in self.encoder.attrs.get(EXTRA_LOSSES) or []:
            loss.check(module)
        return tokenizer

    def describe(self) -> Dict[str, str]:
        return {"backend": "torch"}

    def _module(self) -> torch.nn.Module:
        module = hf_module(self.encoder)
        if not hasattr(module, "config"):
            raise InvalidInput("The torch transformer has no weights yet: call nlp.initialize() first.")
        return module

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_model

        module = self._module()
        (folder / CONFIG_FILE).write_text(module.config.to_json_string(), encoding="utf8")
        save_model(module, str(folder / WEIGHTS_FILE))

    def load(self, folder: Path, cfg: Dict) -> None:
        from safetensors.torch import load_model

        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (folder / name).exists():
                raise MissingFile(
                    f"{folder / name} is missing: the pipeline folder is incomplete. "
                    "Copy it again or re-train the pipeline."
                )
        module = self._build(json.loads((folder / CONFIG_FILE).read_text(encoding="utf8")))
        load_model(module, str(folder / WEIGHTS_FILE))
        _set_module(self.encoder, module)

    def to_bytes(self) -> bytes:
        import srsly
        from safetensors.torch import save

        module = self._module()
        state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
        return srsly.msgpack_dumps({"config": module.config.to_dict(), "weights": save(state)})

    def from_bytes(self, data: bytes, cfg: Dict) -> None:
        import srsly
        from safetensors.torch import load

        msg = srsly.msgpack_loads(data)
        module = self._build(msg["config"])
        module.load_state_dict(load(msg["weights"]))
        _set_module(self.encoder, module)

    @staticmethod
    def _build(config_dict: Dict) -> torch.nn.Module:
        from transformers import AutoConfig, AutoModel

        config_dict = dict(config_dict)
        model_type = config_dict.pop("model_type")
        # JSON keeps a pruned encoder's {layer: heads} with string keys; transformers wants ints.
        config_dict["pruned_heads"] = {
            int(layer): heads for layer, heads in (config_dict.get("pruned_heads") or {}).items()
        }
        config = AutoConfig.for_model(model_type, **config_dict)
        check_model_type(config, "The stored encoder")
        return AutoModel.from_config(config)
