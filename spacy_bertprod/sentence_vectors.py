"""Sentence vectors from the encoder: doc.vector, span.vector and doc.similarity.

The pooling is the one the encoder was trained with when its folder is a sentence-transformers
model (`modules.json` → `1_Pooling/config.json`, and a `Normalize` module), or the one set in the
component's config (`sentence_vector = "mean" | "cls" | "max" | "none"`); otherwise the mean.

How a doc's wordpiece rows become one vector (`TransformerData.pooling` names the rule):
- mean: the mean of every row of every window, specials included, which is how
  sentence-transformers pools its one window: a text that fits one window gets its vector. A
  doc over several windows gets the wordpiece-weighted mean of its window means (a token in two
  overlapping windows counts in both); sentence-transformers would cut it at max_seq_length.
- cls: the first row ([CLS] / <s>) of each window, their wordpiece-weighted mean.
- max: the element-wise maximum over every row.
- normalize: the result divided by its L2 norm (sentence-transformers' Normalize module).
A span (span.vector) pools the rows aligned to its tokens, each once, by the same rule (cls: the
mean): a contextual vector of the span inside its doc, not the span encoded on its own.

The vectors depend on nothing but the doc's own rows, so the same text gets the same vector in
any batch. spaCy keeps user hooks only in-process: docs from nlp.pipe(n_process > 1) lose
doc.vector's hook (spaCy's warning W109), and `doc._.sentence_vector` (an extension getter over
doc._.trf_data, which crosses processes) gives the same vector everywhere.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy
import srsly
from spacy.tokens import Doc, Span

from .errors import InvalidInput

MODES = ("mean", "cls", "max")
SETTINGS = ("auto", "none") + MODES
# sentence-transformers modules this package reproduces; any other one changes the vectors.
ST_PREFIX = "sentence_transformers.models."
ST_HANDLED = {"Transformer", "Pooling", "Normalize"}
ST_POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
ST_UNSUPPORTED_KEYS = (
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


@dataclass(frozen=True)
class SentencePooling:
    """How sentence vectors are pooled, and where that choice came from (for reports)."""

    mode: str = "mean"
    normalize: bool = False
    source: str = "default"

    @property
    def tag(self) -> str:
        return self.mode + (",normalize" if self.normalize else "")

    def to_cfg(self) -> Dict[str, Any]:
        return {"mode": self.mode, "normalize": self.normalize, "source": self.source}

    @classmethod
    def from_cfg(cls, cfg: Dict[str, Any]) -> "SentencePooling":
        return cls(str(cfg["mode"]), bool(cfg["normalize"]), str(cfg.get("source", "saved")))


def check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise InvalidInput(
            f"sentence_vector = {setting!r} is not one of {list(SETTINGS)}: 'auto' reads the pooling of a "
            "sentence-transformers model folder (else the mean), 'none' leaves doc.vector to spaCy."
        )


def from_sentence_transformers(folder: Path) -> Optional[SentencePooling]:
    """The pooling a sentence-transformers folder declares; None when it is not one."""
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules = srsly.read_json(modules_file)
    kinds = [str(m.get("type", "")) for m in modules]
    unknown = [k for k in kinds if not (k.startswith(ST_PREFIX) and k[len(ST_PREFIX) :] in ST_HANDLED)]
    if unknown:
        raise InvalidInput(
            f"{modules_file} has modules {unknown} after the encoder, which spacy_bertprod does not run, so "
            "its vectors would not be this model's. Set the component's sentence_vector to 'mean', 'cls' or "
            "'max' to pool the encoder's output without them, or 'none'."
        )
    pooling = [m for m in modules if m["type"] == ST_PREFIX + "Pooling"]
    if not pooling:
        return None
    config = srsly.read_json(folder / pooling[0].get("path", "1_Pooling") / "config.json")
    return SentencePooling(
        mode=_st_pooling_mode(config, folder),
        normalize=any(k == ST_PREFIX + "Normalize" for k in kinds),
        source=f"sentence-transformers ({folder})",
    )


def _st_pooling_mode(config: Dict[str, Any], folder: Path) -> str:
    unsupported = [k for k in ST_UNSUPPORTED_KEYS if config.get(k)]
    modes = [mode for key, mode in ST_POOLING_KEYS.items() if config.get(key)]
    if unsupported or len(modes) != 1:
        asked = unsupported + [k for k in ST_POOLING_KEYS if config.get(k)]
        raise InvalidInput(
            f"{folder} pools with {asked or 'no mode'}; spacy_bertprod reproduces exactly one of "
            f"{list(ST_POOLING_KEYS)}. Set the component's sentence_vector to 'mean', 'cls' or 'max'."
        )
    return modes[0]


def resolve(
    setting: str, normalize: Optional[bool], encoder_dir: Optional[str], saved: Optional[Dict] = None
) -> SentencePooling:
    """The pooling to use: an explicit setting, else what was saved, else the encoder folder's."""
    check_setting(setting)
    if setting != "auto":
        return SentencePooling(setting, bool(normalize), "config")
    if saved:
        found = SentencePooling.from_cfg(saved)
    elif encoder_dir and Path(encoder_dir).is_dir():
        found = _folder_pooling_or_mean(Path(encoder_dir))
    else:
        found = SentencePooling()
    if normalize is not None and normalize != found.normalize:
        found = SentencePooling(found.mode, bool(normalize), found.source + ", normalize from config")
    return found


def _folder_pooling_or_mean(folder: Path) -> SentencePooling:
    """In 'auto' mode a folder whose pooling cannot be reproduced must not stop an NER or textcat
    pipeline from training: say so and use the mean (the embedder command refuses instead)."""
    try:
        return from_sentence_transformers(folder) or SentencePooling()
    except ValueError as err:
        warnings.warn(f"{err} doc.vector uses the mean of the wordpieces instead.")
        return SentencePooling(source=f"default (the pooling of {folder} is not reproducible)")


def pool(hidden: numpy.ndarray, seq_lengths: numpy.ndarray, pooling: str) -> numpy.ndarray:
    """One vector from a doc's wordpiece rows by the rule `pooling` names (see the module docstring)."""
    mode, _, extra = pooling.partition(",")
    hidden = numpy.asarray(hidden, dtype="float32")
    if mode == "none" or hidden.shape[0] == 0:
        return numpy.zeros((hidden.shape[-1],), dtype="float32")
    if mode == "mean":
        vector = hidden.mean(axis=0, dtype="float64")
    elif mode == "max":
        vector = hidden.max(axis=0)
    elif mode == "cls":
        lengths = numpy.asarray(seq_lengths, dtype="int64")
        if lengths.sum() != hidden.shape[0]:
            lengths = numpy.asarray([hidden.shape[0]])
        starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
        vector = (hidden[starts] * lengths[:, None]).sum(axis=0, dtype="float64") / lengths.sum()
    else:
        raise InvalidInput(f"Unknown sentence pooling {pooling!r}; expected one of {list(MODES)}.")
    vector = numpy.asarray(vector, dtype="float32")
    if extra == "normalize":
        vector = vector / max(float(numpy.linalg.norm(vector)), 1e-12)
    return vector


def doc_sentence_vector(doc: Doc) -> numpy.ndarray:
    data = doc._.trf_data
    if data is None:
        raise InvalidInput("This doc has no transformer output (doc._.trf_data): run it through the pipeline first.")
    return pool(data.hidden, data.seq_lengths, data.pooling)


def span_sentence_vector(span: Span) -> numpy.ndarray:
    data = span.doc._.trf_data
    rows = numpy.unique(numpy.asarray(data.align[span.start : span.end].dataXd).reshape(-1))
    pooling = data.pooling.replace("cls", "mean")
    return pool(numpy.asarray(data.hidden)[rows], numpy.asarray([len(rows)]), pooling)


def _norm(obj) -> float:
    return float(numpy.linalg.norm(obj.vector))


def _has_vector(obj) -> bool:
    return _norm(obj) > 0


def _similarity(obj, other) -> float:
    """Cosine similarity; 0.0 when either side has no vector (as spaCy returns)."""
    a, b = numpy.asarray(obj.vector, dtype="float32"), numpy.asarray(other.vector, dtype="float32")
    if a.shape != b.shape:
        raise InvalidInput(
            f"Cannot compare a {a.shape[-1]}-wide transformer vector with a {b.shape[-1]}-wide one: "
            "compare docs and spans of the same pipeline."
        )
    denominator = float(numpy.linalg.norm(a)) * float(numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / denominator) if denominator > 0 else 0.0


SHARED_HOOKS = {"vector_norm": _norm, "has_vector": _has_vector, "similarity": _similarity}
DOC_HOOKS = {"vector": doc_sentence_vector, **SHARED_HOOKS}
SPAN_HOOKS = {"vector": span_sentence_vector, **SHARED_HOOKS}


def install_hooks(doc: Doc) -> None:
    """Point doc/span .vector, .vector_norm, .has_vector and .similarity at the sentence vectors."""
    doc.user_hooks.update(DOC_HOOKS)
    doc.user_span_hooks.update(SPAN_HOOKS)


def install_sentence_vector_extension() -> None:
    """Register `doc._.sentence_vector` (a getter over the pooled encoder output)."""
    if not Doc.has_extension("sentence_vector"):
        Doc.set_extension("sentence_vector", getter=doc_sentence_vector)
