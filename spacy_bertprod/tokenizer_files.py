"""How a transformer component saves its tokenizer: `tokenizer.json` (a Hugging Face tokenizer over
windows of text) or `pieces.msgpack` (pieces per spaCy token in strided windows, for pipelines
converted from spacy-curated-transformers: pieces.py). The component's cfg says which."""

from typing import Dict, Tuple, Union

from .pieces import PieceWindowTokenizer
from .tokenization import WordpieceTokenizer

WORDPIECE_FILE = "tokenizer.json"
PIECES_FILE = "pieces.msgpack"
# cfg["tokenization"]: absent in pipelines saved before pieces existed.
TOKEN_PIECES = "token_pieces"

Tokenizer = Union[WordpieceTokenizer, PieceWindowTokenizer]


def tokenizer_cfg(tokenizer: Tokenizer) -> Dict:
    cfg = {"max_length": tokenizer.max_length, "pad_id": tokenizer.pad_id}
    if isinstance(tokenizer, PieceWindowTokenizer):
        cfg["tokenization"] = TOKEN_PIECES
    return cfg


def file_name(cfg: Dict) -> str:
    return PIECES_FILE if cfg.get("tokenization") == TOKEN_PIECES else WORDPIECE_FILE


def tokenizer_data(tokenizer: Tokenizer) -> Tuple[str, Union[str, bytes]]:
    """(file name, content) of the tokenizer: text for tokenizer.json, bytes for pieces."""
    if isinstance(tokenizer, PieceWindowTokenizer):
        return PIECES_FILE, tokenizer.to_bytes()
    return WORDPIECE_FILE, tokenizer.tokenizer_json


def load_tokenizer(cfg: Dict, data: Union[str, bytes]) -> Tokenizer:
    if cfg.get("tokenization") == TOKEN_PIECES:
        return PieceWindowTokenizer.from_bytes(data)
    text = data.decode("utf8") if isinstance(data, bytes) else data
    return WordpieceTokenizer(text, max_length=cfg["max_length"], pad_id=cfg["pad_id"])
