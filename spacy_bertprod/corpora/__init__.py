"""The user's labelled data -> train/dev/test .spacy files, checked before any training starts.

`prepare_ner` / `prepare_textcat` read any supported format (see `readers`), carve a fixed,
stratified dev split when none is given, discover the labels, refuse test labels that training
never saw, and write `data.json` with what was read, repaired, skipped and carved, so the report
can say it.
"""

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import spacy
from spacy.tokens import Doc, DocBin

from ..errors import InvalidInput
from .readers import DataError, ReadStats, read_ner, read_textcat
from .split import stratified_split, stratified_subset

__all__ = ["DataError", "prepare_ner", "prepare_textcat"]


def _ner_key(doc: Doc) -> str:
    return doc.ents[0].label_ if doc.ents else "-"


def prepare_ner(
    train: Path,
    dev: Optional[Path],
    test: Path,
    output: Path,
    *,
    train_limit: int = 0,
    eval_limit: int = 0,
    dev_share: float = 0.1,
    seed: int = 0,
    lang: str = "en",
) -> Dict:
    nlp = spacy.blank(lang)
    splits: Dict[str, List[Doc]] = {}
    info: Dict = {"task": "ner", "files": {}}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if path:
            splits[name], stats = read_ner(Path(path), nlp)
            info["files"][name] = _file_info(path, stats)
    if "train" not in splits or "test" not in splits:
        raise InvalidInput("NER data needs a training file and a test file (a dev file is optional).")
    if "dev" not in splits:
        splits["train"], splits["dev"] = stratified_split(splits["train"], _ner_key, dev_share, seed)
        info["dev_carved"] = {
            "from": str(train),
            "share": dev_share,
            "seed": seed,
            "stratified_by": "first entity label",
        }
    labels = sorted({e.label_ for d in splits["train"] for e in d.ents})
    if not labels:
        raise DataError(Path(train), None, "has no entities at all.", "An NER training set needs annotated entities.")
    for name in ("dev", "test"):
        unseen = sorted({e.label_ for d in splits[name] for e in d.ents} - set(labels))
        if unseen:
            where = Path({"dev": dev or train, "test": test}[name])  # a carved dev comes from train
            raise DataError(
                where,
                _first_line_with(where, unseen[0]),
                f"has entity labels the training data never has: {unseen}.",
                "Add training examples for them, or remove/rename them in this file.",
            )
    # Slices for smoke runs: the first N sentences, as before.
    if train_limit:
        splits["train"] = splits["train"][:train_limit]
    if eval_limit:
        splits["dev"], splits["test"] = splits["dev"][:eval_limit], splits["test"][:eval_limit]
    info["labels"] = labels
    return _write(splits, output, info, lambda docs: sum(len(d.ents) for d in docs), "entities")


def prepare_textcat(
    train: Path,
    dev: Optional[Path],
    test: Path,
    output: Path,
    *,
    multilabel: bool = False,
    train_limit: int = 0,
    eval_limit: int = 0,
    dev_share: float = 0.1,
    seed: int = 0,
    lang: str = "en",
) -> Dict:
    nlp = spacy.blank(lang)
    rows: Dict[str, List[Tuple[Doc, List[str]]]] = {}
    info: Dict = {"task": "textcat_multilabel" if multilabel else "textcat", "files": {}}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if path:
            rows[name], stats = read_textcat(Path(path), nlp)
            info["files"][name] = _file_info(path, stats)
            if not multilabel:
                for i, (doc, labels) in enumerate(rows[name]):
                    if len(labels) != 1:
                        raise DataError(
                            Path(path),
                            None,
                            f"row {i + 1} ({doc.text[:40]!r}) has {len(labels)} labels {labels}, but "
                            "exclusive text classification needs exactly one.",
                            "Set vars.textcat_multilabel true for multi-label data.",
                        )
    if "train" not in rows or "test" not in rows:
        raise InvalidInput("Text-classification data needs a training file and a test file (a dev file is optional).")
    key = lambda row: "|".join(row[1])  # noqa: E731
    if "dev" not in rows:
        rows["train"], rows["dev"] = stratified_split(rows["train"], key, dev_share, seed)
        info["dev_carved"] = {"from": str(train), "share": dev_share, "seed": seed, "stratified_by": "label set"}
    labels = sorted({label for _, ls in rows["train"] for label in ls})
    if len(labels) < 2 and not multilabel:
        raise DataError(
            Path(train),
            None,
            f"has only {len(labels)} label ({labels}).",
            "Exclusive classification needs two labels or more.",
        )
    for name in ("dev", "test"):
        unseen = sorted({label for _, ls in rows[name] for label in ls} - set(labels))
        if unseen:
            where = Path({"dev": dev or train, "test": test}[name])  # a carved dev comes from train
            raise DataError(
                where,
                _first_line_with(where, unseen[0]),
                f"has labels the training data never has: {unseen}.",
                "Add training examples for them, or remove/rename them in this file.",
            )
    if train_limit:
        rows["train"] = stratified_subset(rows["train"], key, train_limit, seed)
    if eval_limit:
        rows["dev"] = stratified_subset(rows["dev"], key, max(eval_limit, len(labels)), seed)
        rows["test"] = stratified_subset(rows["test"], key, max(eval_limit, len(labels)), seed)
    splits = {}
    for name, pairs in rows.items():
        splits[name] = []
        for doc, doc_labels in pairs:
            doc.cats = {label: float(label in doc_labels) for label in labels}
            splits[name].append(doc)
    info["labels"] = labels
    return _write(splits, output, info, lambda docs: len(docs), "docs")


def _file_info(path, stats: ReadStats) -> Dict:
    return {
        "path": str(path),
        "format": stats.format,
        "docs": stats.docs,
        "skipped": stats.skipped,
        "repaired": stats.repaired,
    }


def _first_line_with(path: Path, needle: str) -> Optional[int]:
    if path.suffix == ".spacy" or not path.exists():
        return None
    for number, line in enumerate(path.read_text(encoding="utf8", errors="replace").splitlines(), 1):
        if needle in line:
            return number
    return None


def _write(splits: Dict[str, List[Doc]], output: Path, info: Dict, count, unit: str) -> Dict:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    info["splits"] = {}
    for name in ("train", "dev", "test"):
        if not splits[name]:
            raise InvalidInput(f"The {name} split is empty after reading and slicing: check the files and the limits.")
        DocBin(docs=splits[name], store_user_data=False).to_disk(output / f"{name}.spacy")
        info["splits"][name] = {"docs": len(splits[name]), unit: count(splits[name])}
    (output / "labels.json").write_text(json.dumps(info["labels"]), encoding="utf8")
    (output / "data.json").write_text(json.dumps(info, indent=2), encoding="utf8")
    return info
