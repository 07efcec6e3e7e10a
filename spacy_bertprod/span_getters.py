"""Which windows of a doc the encoder sees: torch-free copies of spacy-transformers' span getters.

Same semantics as `spacy-transformers.*_spans.v1`, so a compressed pipeline windows its docs
exactly as the pipeline it came from. A span that is still longer than the encoder's wordpiece
limit is split further by the tokenizer (see tokenization.py), never truncated.
"""

from functools import partial
from typing import Callable, Iterable, List

from spacy.tokens import Doc, Span
from spacy.util import registry

from .errors import InvalidInput

SpanGetter = Callable[[List[Doc]], List[List[Span]]]


def get_strided_spans(docs: Iterable[Doc], window: int, stride: int) -> List[List[Span]]:
    spans: List[List[Span]] = []
    for doc in docs:
        start = 0
        spans.append([])
        for _ in range(len(doc) // stride):
            spans[-1].append(doc[start : start + window])
            if (start + window) >= len(doc):
                break
            start += stride
        else:
            if start < len(doc):
                spans[-1].append(doc[start:])
    return spans


@registry.misc("spacy_bertprod.strided_spans.v1")
def configure_strided_spans(window: int = 128, stride: int = 96) -> SpanGetter:
    """Overlapping windows of `window` tokens every `stride` tokens (stride <= window)."""
    if window < 1 or stride < 1 or stride > window:
        raise InvalidInput(
            f"strided_spans needs 1 <= stride <= window, got window={window}, stride={stride}: "
            "a stride larger than the window would skip tokens."
        )
    return partial(get_strided_spans, window=window, stride=stride)


def get_sent_spans(docs: Iterable[Doc]) -> List[List[Span]]:
    return [list(doc.sents) for doc in docs]


@registry.misc("spacy_bertprod.sent_spans.v1")
def configure_sent_spans() -> SpanGetter:
    """One window per sentence (needs sentence boundaries from an earlier component)."""
    return get_sent_spans


def get_doc_spans(docs: Iterable[Doc]) -> List[List[Span]]:
    return [[doc[:]] if len(doc) else [] for doc in docs]


@registry.misc("spacy_bertprod.doc_spans.v1")
def configure_doc_spans() -> SpanGetter:
    """One window per doc: best for short texts."""
    return get_doc_spans


# spacy-transformers span getter name -> ours (used when compressing a stock pipeline).
STOCK_SPAN_GETTERS = {
    "spacy-transformers.strided_spans.v1": "spacy_bertprod.strided_spans.v1",
    "spacy-transformers.sent_spans.v1": "spacy_bertprod.sent_spans.v1",
    "spacy-transformers.doc_spans.v1": "spacy_bertprod.doc_spans.v1",
}
