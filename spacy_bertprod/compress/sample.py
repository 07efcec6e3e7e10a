"""Which texts `compress` calibrates int8 on and checks parity with, when the user names none.

Calibrated int8 fixes every activation range once, on sample text; a sample far from the
pipeline's domain gives ranges that clip the values real inputs produce. Most users run
`compress` without `--sample`, so the default has to be as close to their domain as we can get:

1. `--sample` when given: however large, thinned evenly to at most `MAX_SAMPLE_DOCS` docs, each
   label's share kept (stratified by a doc's top category or first entity label) where the docs
   are labelled: calibration and the parity checks then take the same time for a 1,000-doc dev
   set as for a 100,000-doc one, and the report says how many of how many were used;
2. else the corpora the pipeline was trained with, as spaCy stored them in its config
   (`[paths] dev`, then `train`), when those files can still be found: the path as written
   (relative to the working directory, as `spacy train` and `spacy project` use it), then
   relative to each folder above the pipeline (a project's `training/.../model-best`);
3. else the built-in set: a few hundred short texts across registers (news, questions and
   commands, social media, reviews and product text, names and numbers, code-like strings,
   formal text, conversation, long paragraphs, many scripts), written for this project and
   shipped under the package's licence (`calibration_texts.jsonl`).

Corpora are thinned evenly to at most `DEFAULT_SAMPLE_DOCS` docs, so a large train set does not
make compress slow; the report says where the texts came from and how many there were.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import srsly

from ..errors import InvalidInput

BUILT_IN_FILE = Path(__file__).with_name("calibration_texts.jsonl")
# Docs taken from a corpus named in the pipeline's config (evenly spaced over it).
DEFAULT_SAMPLE_DOCS = 400
# Docs kept of a --sample (stratified, evenly spaced within each label).
MAX_SAMPLE_DOCS = 1000
CONFIG_CORPORA = ("dev", "train")


@dataclass
class CalibrationSample:
    texts: List[str]
    # "sample" (--sample), "config_dev", "config_train" or "built_in"
    kind: str
    # what the user reads: the file, or the built-in set
    source: str
    # docs available before thinning
    n_available: int
    # how the docs were thinned to len(texts), when they were ("" when all were used)
    thinned: str = ""

    @property
    def in_domain(self) -> bool:
        return self.kind != "built_in"

    def to_dict(self) -> Dict:
        out = {"kind": self.kind, "source": self.source, "n_docs": len(self.texts), "n_available": self.n_available}
        return {**out, "thinned": self.thinned} if self.thinned else out


def built_in_rows() -> List[Dict[str, str]]:
    """The built-in calibration texts, each with its register."""
    return list(srsly.read_jsonl(BUILT_IN_FILE))


def built_in_texts() -> List[str]:
    return [row["text"] for row in built_in_rows()]


def choose_sample(
    pipeline_path: Path,
    paths: Dict[str, object],
    user_texts: Optional[List[str]] = None,
    user_source: str = "--sample",
    max_docs: int = DEFAULT_SAMPLE_DOCS,
    user_path: Optional[Path] = None,
) -> CalibrationSample:
    """The calibration texts for the pipeline at `pipeline_path`, whose config has `[paths]` `paths`."""
    if user_path is not None:
        return read_sample(Path(user_path))
    if user_texts:
        thinned = "evenly spaced" if len(user_texts) > MAX_SAMPLE_DOCS else ""
        return CalibrationSample(
            thin_evenly(user_texts, MAX_SAMPLE_DOCS), "sample", user_source, len(user_texts), thinned
        )
    for key in CONFIG_CORPORA:
        found = find_config_corpus(paths.get(key), Path(pipeline_path))
        if found is None:
            continue
        texts = [t for t in _corpus_texts(found) if t.strip()]
        if texts:
            source = f"the pipeline's training config, [paths] {key} = {found}"
            return CalibrationSample(thin_evenly(texts, max_docs), f"config_{key}", source, len(texts))
    texts = built_in_texts()
    source = f"the built-in set of {len(texts)} texts across registers"
    return CalibrationSample(texts, "built_in", source, len(texts))


def find_config_corpus(value: object, pipeline_path: Path) -> Optional[Path]:
    """The existing .spacy file or folder a `[paths]` value names, or None."""
    if not isinstance(value, (str, Path)) or str(value).strip() in ("", "null", "None"):
        return None
    path = Path(value)
    candidates = [path] if path.is_absolute() else [path] + [p / path for p in pipeline_path.resolve().parents]
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".spacy":
            return candidate
        if candidate.is_dir() and any(candidate.rglob("*.spacy")):
            return candidate
    return None


def _corpus_texts(path: Path) -> List[str]:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training.corpus import walk_corpus

    vocab = spacy.blank("xx").vocab
    return [doc.text for file in walk_corpus(path, ".spacy") for doc in DocBin().from_disk(file).get_docs(vocab)]


def thin_evenly(texts: Sequence[str], max_docs: int) -> List[str]:
    """At most `max_docs` texts, evenly spaced over `texts` (deterministic, order kept)."""
    return [texts[i] for i in _even_indices(len(texts), max_docs)]


def read_sample(path: Path, max_docs: int = MAX_SAMPLE_DOCS) -> CalibrationSample:
    """At most `max_docs` texts of a --sample file, each label's share kept: two passes, constant memory."""
    from ..texts import count_texts, iter_texts

    labelled = path.suffix == ".spacy" or path.is_dir()
    if not labelled:
        n = count_texts(path)
        keep = set(_even_indices(n, max_docs))
        texts = [t for i, t in enumerate(iter_texts(path)) if i in keep]
        return CalibrationSample(texts, "sample", f"--sample {path}", n, "evenly spaced" if n > max_docs else "")
    strata = Counter(_stratum(doc) for doc in _docs(path))
    n = sum(strata.values())
    if not n:
        raise InvalidInput(f"{path} holds no docs to calibrate on.")
    quotas = _quotas(strata, max_docs)
    picks = {key: set(_even_indices(strata[key], quota)) for key, quota in quotas.items()}
    seen: Counter = Counter()
    texts = []
    for doc in _docs(path):
        key = _stratum(doc)
        if seen[key] in picks[key]:
            texts.append(doc.text)
        seen[key] += 1
    thinned = f"stratified by label ({len(strata)} strata), evenly spaced within each" if n > max_docs else ""
    return CalibrationSample(texts, "sample", f"--sample {path}", n, thinned)


def _docs(path: Path):
    import spacy

    from ..streaming import iter_docs

    return iter_docs([path], spacy.blank("xx").vocab)


def _stratum(doc) -> str:
    """A doc's label for stratified thinning: its top category, else its first entity's label."""
    if doc.cats:
        return "cat:" + max(doc.cats, key=doc.cats.get)
    return "ent:" + (doc.ents[0].label_ if doc.ents else "-")


def _quotas(strata: Counter, max_docs: int) -> Dict[str, int]:
    """Docs to keep per stratum: proportional, rounded by largest remainder, summing to min(n, max_docs)."""
    n = sum(strata.values())
    if n <= max_docs:
        return dict(strata)
    exact = {key: count * max_docs / n for key, count in strata.items()}
    quotas = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(exact, key=lambda key: (quotas[key] - exact[key], key))
    for key in by_remainder[: max_docs - sum(quotas.values())]:
        quotas[key] += 1
    return quotas


def _even_indices(n: int, k: int) -> List[int]:
    """k indices evenly spaced over range(n) (all of them when k >= n)."""
    return list(range(n)) if n <= k else [i * n // k for i in range(k)]
