"""Per-doc transformer output: wordpieces, token alignment and hidden states, all numpy.

This is what `doc._.trf_data` holds and what listeners read. It deliberately has no torch
dependency so that a compressed (ONNX) pipeline can be served without torch installed.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy
import srsly
from spacy.tokens import Doc
from thinc.types import Floats2d, Ints1d, Ragged


def install_trf_data_extension() -> None:
    """Register `doc._.trf_data` (shared with spacy-transformers, which uses the same name)."""
    if not Doc.has_extension("trf_data"):
        Doc.set_extension("trf_data", default=None)


@dataclass
class TransformerData:
    """The transformer's output for one doc.

    input_ids: the doc's wordpiece ids, all of its windows concatenated (specials included).
    hidden: one row of `width` floats per wordpiece in `input_ids`.
    align: for every spaCy token, the rows of `hidden` it is aligned to (a token inside two
        overlapping windows is aligned to wordpieces in both; a token the tokenizer drops, such as
        a control character, has none).
    seq_lengths: how many rows of `hidden` each window holds, in order (sentence vectors pool
        per window; see sentence_vectors.py).
    pooling: how the doc's sentence vector is pooled ("mean", "cls", "max" or "none", then
        ",normalize" when it is L2-normalised), so the vector can be computed in any process.
    head_scores: per component, the scores a head inside the ONNX graph computed for this doc
        (graph_heads.py; empty when no head runs in the graph or the doc has several windows).
    layers: every layer's output, embeddings first, one (n_layers + 1, width) block per row of
        `hidden`, when a listener weights or reads all layers (spacy-curated-transformers'
        ScalarWeightingListener / TransformerLayersListener); None otherwise.
    """

    input_ids: Ints1d
    hidden: Floats2d
    align: Ragged
    seq_lengths: Ints1d = field(default_factory=lambda: numpy.zeros((0,), dtype="int32"))
    pooling: str = "mean"
    head_scores: Dict[str, numpy.ndarray] = field(default_factory=dict)
    layers: Optional[numpy.ndarray] = None

    @property
    def width(self) -> int:
        return int(self.hidden.shape[-1])

    @classmethod
    def zeros(cls, n_tokens: int, width: int) -> "TransformerData":
        """Output for a doc the transformer never saw: tokens aligned to nothing."""
        return cls(
            input_ids=numpy.zeros((0,), dtype="int64"),
            hidden=numpy.zeros((0, width), dtype="float32"),
            align=Ragged(numpy.zeros((0,), dtype="int32"), numpy.zeros((n_tokens,), dtype="int32")),
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "input_ids": numpy.asarray(self.input_ids),
            "hidden": numpy.asarray(self.hidden),
            "align_data": numpy.asarray(self.align.dataXd),
            "align_lengths": numpy.asarray(self.align.lengths),
            "seq_lengths": numpy.asarray(self.seq_lengths),
            "pooling": self.pooling,
            "head_scores": {name: numpy.asarray(v) for name, v in self.head_scores.items()},
            "layers": None if self.layers is None else numpy.asarray(self.layers),
        }

    @classmethod
    def from_dict(cls, msg: Dict[str, Any]) -> "TransformerData":
        # Docs from before seq_lengths was kept hold one window per doc as far as pooling knows.
        n_rows = len(msg["input_ids"])
        seq_lengths = msg.get("seq_lengths")
        if seq_lengths is None:
            seq_lengths = numpy.asarray([n_rows] if n_rows else [], dtype="int32")
        return cls(
            input_ids=msg["input_ids"],
            hidden=msg["hidden"],
            align=Ragged(msg["align_data"], msg["align_lengths"]),
            seq_lengths=seq_lengths,
            pooling=msg.get("pooling", "mean"),
            head_scores=dict(msg.get("head_scores") or {}),
            layers=msg.get("layers"),
        )


def mean_token_vectors(hidden, lengths, index, n_tokens: int) -> numpy.ndarray:
    """One vector per token: the mean of the wordpiece rows aligned to it (zeros if none), as the
    listeners' reduce_mean pooling sees it. `lengths`/`index` are the alignment's Ragged parts."""
    hidden = numpy.asarray(hidden, dtype="float32")
    lengths = numpy.asarray(lengths)
    owner = numpy.repeat(numpy.arange(n_tokens), lengths)
    sums = numpy.zeros((n_tokens, hidden.shape[-1]), dtype="float32")
    numpy.add.at(sums, owner, hidden[numpy.asarray(index).reshape(-1)])
    return sums / numpy.maximum(lengths, 1)[:, None]


# Docs cross process boundaries (nlp.pipe(n_process>1)) as msgpack bytes, user data included.
@srsly.msgpack_encoders("bertprod_transformer_data")
def _serialize(obj, chain=None):
    if isinstance(obj, TransformerData):
        return {"__bertprod_trf_data__": obj.to_dict()}
    return obj if chain is None else chain(obj)


@srsly.msgpack_decoders("bertprod_transformer_data")
def _deserialize(obj, chain=None):
    if isinstance(obj, dict) and "__bertprod_trf_data__" in obj:
        return TransformerData.from_dict(obj["__bertprod_trf_data__"])
    return obj if chain is None else chain(obj)
