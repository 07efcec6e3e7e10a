"""Reading the user's texts (benchmark data, compress samples, raw text) from the formats we accept.

`iter_texts` streams (a .spacy file or folder one file at a time, JSONL and text files line by
line), so a corpus of millions of texts passes through in constant memory; `read_texts` is the
list, for the small samples that are used whole.
"""

import itertools
from pathlib import Path
from typing import Iterator, List

from .errors import InvalidInput, MissingFile


def iter_texts(path: Path, limit: int = 0) -> Iterator[str]:
    """Texts from .spacy DocBins (a file or a folder), a .jsonl file with "text" fields, or a plain text file
    (one per line, blank lines skipped), lazily. The path is checked before the first text is asked for."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"Text file {path} does not exist.")
    texts = _texts(path)
    return itertools.islice(texts, limit) if limit else texts


def _texts(path: Path) -> Iterator[str]:
    if path.suffix == ".spacy" or path.is_dir():
        import spacy

        from .streaming import iter_docs

        return (doc.text for doc in iter_docs([path], spacy.blank("xx").vocab))
    if path.suffix == ".jsonl":
        return _jsonl_texts(path)
    return _line_texts(path)


def _jsonl_texts(path: Path) -> Iterator[str]:
    import srsly

    for i, row in enumerate(srsly.read_jsonl(path)):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InvalidInput(f"{path}: line {i + 1} has no 'text' string field.")
        yield row["text"]


def _line_texts(path: Path) -> Iterator[str]:
    with path.open(encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.strip():
                yield line


def read_texts(path: Path, limit: int = 0) -> List[str]:
    """All the texts of `iter_texts` (at most `limit`), refusing a file with none."""
    texts = list(iter_texts(path, limit))
    if not any(t.strip() for t in texts):
        raise InvalidInput(f"{path} holds no texts.")
    return texts


def count_texts(path: Path, limit: int = 0) -> int:
    """How many texts `iter_texts` gives, refusing a file with none (one pass, constant memory)."""
    n, blank = 0, True
    for text in iter_texts(path, limit):
        n, blank = n + 1, blank and not text.strip()
    if blank:
        raise InvalidInput(f"{path} holds no texts.")
    return n
