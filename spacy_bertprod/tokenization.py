"""Wordpieces for spaCy spans and their alignment to spaCy tokens.

The alignment follows spacy-transformers (`get_alignment_via_offset_mapping`): a wordpiece belongs
to every token of its window whose characters it overlaps, and a token also claims the character
right after it (its trailing space).

One fast (Rust) tokenizer, loaded from a `tokenizer.json`, serves every backend: it needs no torch
and no transformers, and it is used without padding or truncation state, so one instance can be
shared by threads (the "Already borrowed" crash of spacy-transformers #6879 comes from mutating
that state per call).
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span
from thinc.types import Ragged

from .errors import InvalidInput


@dataclass
class Wordpieces:
    """One encoder input sequence: ids and, per wordpiece, its character range in the doc.

    Special tokens have an empty range (start == end) and are aligned to no token.
    """

    ids: numpy.ndarray  # int64 (n,)
    starts: numpy.ndarray  # int64 (n,) doc character offsets
    ends: numpy.ndarray  # int64 (n,)


class WordpieceTokenizer:
    """A `tokenizers.Tokenizer` plus what the encoder needs to know about it."""

    def __init__(self, tokenizer_json: str, *, max_length: int, pad_id: int):
        from tokenizers import Tokenizer

        self.tokenizer_json = tokenizer_json
        tokenizer = Tokenizer.from_str(tokenizer_json)
        # Saved tokenizers often carry padding/truncation settings (MiniLM's truncates at 128):
        # we window and pad ourselves and must never lose wordpieces silently.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.n_special = tokenizer.num_special_tokens_to_add(is_pair=False)
        if max_length <= self.n_special:
            raise InvalidInput(
                f"max_length={max_length} leaves no room for wordpieces next to the tokenizer's "
                f"{self.n_special} special tokens: set a larger max_length."
            )
        self.max_length = int(max_length)
        self.pad_id = int(pad_id)

    def __reduce__(self):
        return (_rebuild_tokenizer, (self.tokenizer_json, self.max_length, self.pad_id))

    def encode_spans(self, spans: Sequence[Span]) -> List[List[Wordpieces]]:
        """Encode spans into sequences of at most `max_length` wordpieces, specials included.

        A span longer than that (a 10,000-character token, a long window of URLs) is split into
        several consecutive sequences rather than truncated, so every token keeps its wordpieces.
        Character offsets are relative to the span's doc.
        """
        batch = encode_docs(self, [span.doc for span in spans], [[span] for span in spans])
        output, start = [], 0
        for n_seqs in batch.doc_n_seqs:
            output.append(batch.sequences[start : start + n_seqs])
            start += n_seqs
        return output

    def encode_texts(self, texts: Sequence[str]) -> List[list]:
        """Per text, its `tokenizers.Encoding`s: one, or several consecutive ones of at most
        `max_length` wordpieces each when the text is longer (split, never truncated)."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        output = []
        for text, encoding in zip(texts, encodings):
            pieces = [encoding]
            if len(encoding.ids) > self.max_length:
                plain = self.tokenizer.encode(text, add_special_tokens=False)
                plain.truncate(self.max_length - self.n_special)
                first = self.tokenizer.post_process(plain)
                pieces = [first] + list(first.overflowing)
            output.append(pieces)
        return output


def _rebuild_tokenizer(tokenizer_json: str, max_length: int, pad_id: int) -> WordpieceTokenizer:
    return WordpieceTokenizer(tokenizer_json, max_length=max_length, pad_id=pad_id)


@dataclass
class EncodedBatch:
    """The wordpiece sequences of a batch of docs and each doc's token -> wordpiece alignment.

    A doc's rows are its sequences back to back, or, for strided windows over a doc's pieces
    (`stride` set: pieces.py), one row per piece, a piece that two windows share getting their mean.
    """

    sequences: List[Wordpieces]
    doc_n_seqs: List[int]
    aligns: List[Ragged]
    stride: Optional[int] = None

    @property
    def seq_doc(self) -> numpy.ndarray:
        """Per sequence, the index of its doc (made once per batch)."""
        if getattr(self, "_seq_doc", None) is None:
            self._seq_doc = numpy.repeat(numpy.arange(len(self.doc_n_seqs)), self.doc_n_seqs)
        return self._seq_doc

    def join(self, rows: Sequence[numpy.ndarray]) -> numpy.ndarray:
        """One doc's window outputs -> the doc's rows (what `aligns` indexes)."""
        if self.stride is None or len(rows) == 1:
            return numpy.concatenate(rows, axis=0)
        n = max(self.stride * i + len(r) for i, r in enumerate(rows))
        total = numpy.zeros((n,) + rows[0].shape[1:], dtype="float32")
        count = numpy.zeros((n,) + (1,) * (rows[0].ndim - 1), dtype="float32")
        for i, r in enumerate(rows):
            total[self.stride * i : self.stride * i + len(r)] += r
            count[self.stride * i : self.stride * i + len(r)] += 1
        return total / count

    def join_ids(self, ids: Sequence[numpy.ndarray]) -> numpy.ndarray:
        if self.stride is None or len(ids) == 1:
            return numpy.concatenate(ids)
        return numpy.concatenate([w[: self.stride] for w in ids[:-1]] + [ids[-1]])

    def split(self, d_rows: numpy.ndarray, lengths: Sequence[int]) -> List[numpy.ndarray]:
        """The gradient of `join`: per window, its rows' gradient (shared rows: over their count)."""
        if self.stride is None or len(lengths) == 1:
            starts = numpy.concatenate([[0], numpy.cumsum(lengths)]).tolist()
            return [d_rows[a:b] for a, b in zip(starts[:-1], starts[1:])]
        count = numpy.zeros((len(d_rows), 1), dtype="float32")
        for i, length in enumerate(lengths):
            count[self.stride * i : self.stride * i + length] += 1
        scaled = d_rows / count
        return [scaled[self.stride * i : self.stride * i + length] for i, length in enumerate(lengths)]


@dataclass
class _Flat:
    """Every sequence of a batch back to back: per sequence its doc, its span's first char and
    first/last token (doc-local) and length; per wordpiece its id, offsets and special flag."""

    seq_doc: List[int] = field(default_factory=list)
    seq_span_char: List[int] = field(default_factory=list)
    seq_lo: List[int] = field(default_factory=list)
    seq_hi: List[int] = field(default_factory=list)
    seq_len: List[int] = field(default_factory=list)
    ids: List[int] = field(default_factory=list)
    offsets: List[Tuple[int, int]] = field(default_factory=list)
    special: List[int] = field(default_factory=list)
    doc_n_seqs: List[int] = field(default_factory=list)

    @classmethod
    def of(cls, encodings, doc_spans: Sequence[Sequence[Span]]) -> "_Flat":
        flat = cls()
        flat_index = 0
        for d, spans in enumerate(doc_spans):
            n_seqs = 0
            for span in spans:
                for encoding in encodings[flat_index]:
                    flat.seq_doc.append(d)
                    flat.seq_span_char.append(span.start_char)
                    flat.seq_lo.append(span.start)
                    flat.seq_hi.append(span.end - 1)
                    flat.seq_len.append(len(encoding.ids))
                    flat.ids.extend(encoding.ids)
                    flat.offsets.extend(encoding.offsets)
                    flat.special.extend(encoding.special_tokens_mask)
                    n_seqs += 1
                flat_index += 1
            flat.doc_n_seqs.append(n_seqs)
        return flat


def encode_docs(
    tokenizer: WordpieceTokenizer, docs: Sequence[Doc], doc_spans: Sequence[Sequence[Span]]
) -> EncodedBatch:
    """Encode the (non-empty) windows of a batch of docs and align the wordpieces to tokens.

    Computed for the whole batch at once: one tokenizer call and a fixed number of numpy
    operations over all wordpieces (per-window numpy calls on arrays of a dozen elements cost more
    than the tokenizer itself). Docs share one character axis (doc i's chars start after doc i-1's
    text plus its one-past-the-end slot) and one token axis; a doc's result does not depend on its
    batch-mates (tested, as is the equality with spacy-transformers' alignment).
    """
    texts = [doc.text for doc in docs]
    flat_texts = [text[span.start_char : span.end_char] for text, spans in zip(texts, doc_spans) for span in spans]
    flat = _Flat.of(tokenizer.encode_texts(flat_texts), doc_spans)  # per span: 1+ encodings
    seq_doc, seq_span_char, seq_lo, seq_hi, seq_len = (
        flat.seq_doc,
        flat.seq_span_char,
        flat.seq_lo,
        flat.seq_hi,
        flat.seq_len,
    )
    ids_all, offsets_all, special_all, doc_n_seqs = flat.ids, flat.offsets, flat.special, flat.doc_n_seqs
    n_docs = len(docs)
    doc_chars = numpy.asarray([len(t) + 1 for t in texts], dtype="int64")
    char_base = numpy.concatenate([[0], numpy.cumsum(doc_chars)[:-1]]).astype("int64")
    doc_tokens = numpy.asarray([len(doc) for doc in docs], dtype="int64")
    token_base = numpy.concatenate([[0], numpy.cumsum(doc_tokens)[:-1]]).astype("int64")
    seq_len_a = numpy.asarray(seq_len, dtype="int64")
    seq_doc_a = numpy.asarray(seq_doc, dtype="int64")
    wp_seq = numpy.repeat(numpy.arange(len(seq_len), dtype="int64"), seq_len_a)
    ids = numpy.asarray(ids_all, dtype="int64")
    offsets = numpy.asarray(offsets_all, dtype="int64").reshape(-1, 2)
    special = numpy.asarray(special_all, dtype=bool)
    # Doc-local character ranges of each wordpiece (specials: empty).
    starts = offsets[:, 0] + numpy.asarray(seq_span_char, dtype="int64")[wp_seq]
    ends = numpy.where(special, starts, offsets[:, 1] + (starts - offsets[:, 0]))
    c2t = _char_to_token(docs, char_base, doc_tokens, int(doc_chars.sum()))
    covered = numpy.flatnonzero(c2t >= 0)
    # Per wordpiece: the first and last covered character in [start, end), clipped to its span.
    wp_doc = seq_doc_a[wp_seq]
    g_starts = starts + char_base[wp_doc]
    g_ends = ends + char_base[wp_doc]
    lo = numpy.asarray(seq_lo, dtype="int64")[wp_seq] + token_base[wp_doc]
    hi = numpy.asarray(seq_hi, dtype="int64")[wp_seq] + token_base[wp_doc]
    if len(covered):
        first_pos = numpy.searchsorted(covered, g_starts, side="left")
        last_pos = numpy.searchsorted(covered, g_ends, side="left") - 1
        valid = (first_pos <= last_pos) & (ends > starts)
        first_tok = numpy.clip(c2t[covered[numpy.minimum(first_pos, len(covered) - 1)]], lo, hi)
        last_tok = numpy.clip(c2t[covered[numpy.maximum(last_pos, 0)]], lo, hi)
        counts = numpy.maximum(numpy.where(valid, last_tok - first_tok + 1, 0), 0)
    else:  # no token covers any character (only empty docs): nothing to align
        first_tok = numpy.zeros(len(ids), dtype="int64")
        counts = numpy.zeros(len(ids), dtype="int64")
    # Wordpieces are numbered per doc, its sequences back to back.
    wp_global = numpy.arange(len(ids), dtype="int64")
    doc_wp_counts = numpy.bincount(wp_doc, minlength=n_docs)
    doc_wp_base = numpy.concatenate([[0], numpy.cumsum(doc_wp_counts)[:-1]]).astype("int64")
    wp_local = wp_global - doc_wp_base[wp_doc]
    pair_wp = numpy.repeat(wp_local, counts)
    step = numpy.arange(int(counts.sum())) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
    pair_tok = numpy.repeat(first_tok, counts) + step  # global token ids
    order = numpy.lexsort((pair_wp, pair_tok))  # by token (so by doc), then wordpiece
    aligns = _ragged_per_doc(pair_tok, pair_wp[order].astype("int32"), doc_tokens, token_base)
    seq_starts = numpy.concatenate([[0], numpy.cumsum(seq_len_a)]).astype("int64")
    sequences = [
        Wordpieces(ids[a:b], starts[a:b], ends[a:b]) for a, b in zip(seq_starts[:-1].tolist(), seq_starts[1:].tolist())
    ]
    return EncodedBatch(sequences, doc_n_seqs, aligns)


def _char_to_token(
    docs: Sequence[Doc], char_base: numpy.ndarray, doc_tokens: numpy.ndarray, total_chars: int
) -> numpy.ndarray:
    """Global character -> global token (-1: none). A token also claims the character right after
    it (its trailing space, as spacy-transformers), unless another token's body covers it."""
    c2t = numpy.full((total_chars,), -1, dtype="int64")
    if not int(doc_tokens.sum()):
        return c2t
    tok_offsets = numpy.concatenate([doc.to_array([IDX, LENGTH]).astype("int64").reshape(-1, 2) for doc in docs])
    tok_starts = tok_offsets[:, 0] + char_base[numpy.repeat(numpy.arange(len(docs), dtype="int64"), doc_tokens)]
    tok_lengths = tok_offsets[:, 1]
    token_ids = numpy.arange(len(tok_offsets), dtype="int64")
    c2t[tok_starts + tok_lengths] = token_ids  # trailing character first, token bodies win below
    within = numpy.arange(int(tok_lengths.sum())) - numpy.repeat(numpy.cumsum(tok_lengths) - tok_lengths, tok_lengths)
    c2t[numpy.repeat(tok_starts, tok_lengths) + within] = numpy.repeat(token_ids, tok_lengths)
    return c2t


def _ragged_per_doc(
    pair_tok: numpy.ndarray, sorted_wp: numpy.ndarray, doc_tokens: numpy.ndarray, token_base: numpy.ndarray
) -> List[Ragged]:
    """Split the (token, wordpiece) pairs, sorted by global token, into one Ragged per doc."""
    per_token = numpy.bincount(pair_tok, minlength=int(doc_tokens.sum())).astype("int32")
    aligns: List[Ragged] = []
    pair_start = 0
    for first, n_tokens in zip(token_base.tolist(), doc_tokens.tolist()):
        lengths = per_token[first : first + n_tokens]
        n_pairs = int(lengths.sum())
        aligns.append(Ragged(sorted_wp[pair_start : pair_start + n_pairs], lengths))
        pair_start += n_pairs
    return aligns
