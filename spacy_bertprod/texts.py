"""Reading the user's texts (benchmark data, compress samples) from the formats we accept."""

from pathlib import Path
from typing import List


def read_texts(path: Path, limit: int = 0) -> List[str]:
    """Texts from a .spacy DocBin, a .jsonl file with "text" fields, or a plain text file (one per line)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Text file {path} does not exist.")
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        texts = [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)]
    elif path.suffix == ".jsonl":
        import srsly

        texts = []
        for i, row in enumerate(srsly.read_jsonl(path)):
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}: line {i + 1} has no 'text' string field.")
            texts.append(row["text"])
    else:
        texts = [line for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    if not any(t.strip() for t in texts):
        raise ValueError(f"{path} holds no texts.")
    return texts[:limit] if limit else texts
