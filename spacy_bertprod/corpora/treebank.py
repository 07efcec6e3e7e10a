"""A multi-task corpus: a CoNLL-U treebank (tags, morphology, lemmas, dependencies, sentences) plus an
optional NER corpus, as train/dev/test folders spaCy trains from and evaluates on (each
`1-treebank.spacy` and `2-ner.spacy`).

spaCy trains every head from the docs that annotate its layer, so the treebank's docs (no
entities) and the NER corpus's (no tags or trees) share one training folder; `spacy evaluate` on
each split's folder scores each layer on the docs that have it.
"""

import json
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional

import spacy
from spacy.tokens import DocBin

from ..errors import InvalidInput
from .conllu import read_conllu

SPLITS = ("train", "dev", "test")
# The file names order the treebank first: spaCy reads a folder's files sorted, and its Scorer.score_deps
# (3.8) keeps the token positions of docs without a tree as missing for every doc scored after them,
# so treebank docs scored after the NER corpus's would lose most of their arcs (UAS 84 -> 46 measured).
TREEBANK_FILE, NER_FILE = "1-treebank.spacy", "2-ner.spacy"


def prepare_treebank(
    train: Path,
    dev: Path,
    test: Path,
    output: Path,
    *,
    ner_train: Optional[Path] = None,
    ner_dev: Optional[Path] = None,
    ner_test: Optional[Path] = None,
    train_limit: int = 0,
    eval_limit: int = 0,
    seed: int = 0,
    lang: str = "en",
    n_sents: int = 10,
) -> Dict:
    """Write OUTPUT/{train,dev,test}/1-treebank.spacy (and 2-ner.spacy) and OUTPUT/data.json."""
    if dev is None:
        raise InvalidInput("A treebank needs its dev file (--dev): UD treebanks ship one.")
    nlp = spacy.blank(lang)
    info: Dict = {"task": "trf", "files": {}, "splits": {}}
    limits = {"train": train_limit, "dev": eval_limit, "test": eval_limit}
    stale = [f for name in SPLITS for f in _clear_split(Path(output) / name)]
    ours = {TREEBANK_FILE} | ({NER_FILE} if ner_train is not None else set())
    info["replaced"] = [str(f) for f in stale if f.name not in ours]  # what this run does not write again
    for name, path in zip(SPLITS, (train, dev, test)):
        docs, stats = read_conllu(Path(path), nlp, n_sents=n_sents)
        docs = docs[: limits[name]] if limits[name] else docs
        (Path(output) / name).mkdir(parents=True, exist_ok=True)
        DocBin(docs=docs, store_user_data=False).to_disk(Path(output) / name / TREEBANK_FILE)
        info["files"][name] = {"path": str(path), "format": stats.format, "docs": len(docs),
                               "skipped": stats.skipped, "repaired": stats.repaired}  # fmt: skip
        info["splits"][name] = {"docs": len(docs), "sentences": sum(len(list(d.sents)) for d in docs)}
    info["labels"] = _labels(Path(output) / "train" / TREEBANK_FILE, nlp)
    if ner_train is not None:
        info["ner"] = _add_ner(ner_train, ner_dev, ner_test, Path(output), limits, seed, lang)
    (Path(output) / "data.json").write_text(json.dumps(info, indent=2), encoding="utf8")
    return info


def _clear_split(folder: Path) -> list:
    """Remove the .spacy files an earlier run left in a split folder: spaCy reads every .spacy file in
    the folder, so a stale one (another run's NER corpus, an old file name) would silently join the data."""
    stale = sorted(folder.glob("*.spacy")) if folder.is_dir() else []
    for path in stale:
        path.unlink()
    return stale


def _labels(path: Path, nlp) -> list:
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    return sorted({t.tag_ for d in docs for t in d if t.tag_})


def _add_ner(train, dev, test, output: Path, limits: Dict[str, int], seed: int, lang: str) -> Dict:
    """The NER corpus through `prepare_ner`, its splits moved beside the treebank's."""
    from . import prepare_ner

    with tempfile.TemporaryDirectory() as work:
        info = prepare_ner(
            Path(train), Path(dev) if dev else None, Path(test), Path(work),
            train_limit=limits["train"], eval_limit=limits["dev"], seed=seed, lang=lang,
        )  # fmt: skip
        for name in SPLITS:
            shutil.move(str(Path(work) / f"{name}.spacy"), str(output / name / NER_FILE))
    return {"labels": info["labels"], "splits": info["splits"], "files": info["files"]}
