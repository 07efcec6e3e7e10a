"""Wordpieces for spaCy spans and their alignment to spaCy tokens.

One fast (Rust) tokenizer, loaded from a `tokenizer.json`, serves every backend: it needs no torch
and no transformers, and it is used without padding or truncation state, so one instance can be
shared by threads (the "Already borrowed" crash of spacy-transformers #6879 comes from mutating
that state per call).
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span


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
            raise ValueError(
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
        """
        encodings = self.tokenizer.encode_batch([span.text for span in spans], add_special_tokens=True)
        output: List[List[Wordpieces]] = []
        for span, encoding in zip(spans, encodings):
            output.append([])
            pieces = [encoding]
            if len(encoding.ids) > self.max_length:
                plain = self.tokenizer.encode(span.text, add_special_tokens=False)
                plain.truncate(self.max_length - self.n_special)
                first = self.tokenizer.post_process(plain)
                pieces = [first] + list(first.overflowing)
            base = span.start_char
            for piece in pieces:
                offsets = numpy.asarray(piece.offsets, dtype="int64").reshape(-1, 2)
                special = numpy.asarray(piece.special_tokens_mask, dtype=bool)
                starts = offsets[:, 0] + base
                ends = numpy.where(special, starts, offsets[:, 1] + base)
                output[-1].append(Wordpieces(numpy.asarray(piece.ids, dtype="int64"), starts, ends))
        return output


def _rebuild_tokenizer(tokenizer_json: str, max_length: int, pad_id: int) -> WordpieceTokenizer:
    return WordpieceTokenizer(tokenizer_json, max_length=max_length, pad_id=pad_id)


def char_to_token(doc: Doc) -> numpy.ndarray:
    """Map each character of `doc.text` (plus one past the end) to the token that covers it.

    As in spacy-transformers, a token also claims the character right after it (its trailing
    space), so a wordpiece that starts on that space is still aligned. -1 means no token.
    """
    mapping = numpy.full((len(doc.text) + 1,), -1, dtype="int64")
    if len(doc) == 0:
        return mapping
    offsets = doc.to_array([IDX, LENGTH]).astype("int64")
    starts, lengths = offsets[:, 0], offsets[:, 1]
    token_ids = numpy.arange(len(doc), dtype="int64")
    mapping[starts + lengths] = token_ids  # trailing character first, token bodies win below
    char_owner = numpy.repeat(token_ids, lengths)
    within = numpy.arange(int(lengths.sum())) - numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    mapping[numpy.repeat(starts, lengths) + within] = char_owner
    return mapping


def align_wordpieces(
    c2t: numpy.ndarray, span: Span, pieces: Sequence[Wordpieces], offset: int
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(token, wordpiece) pairs for one span's sequences; wordpieces numbered from `offset`.

    A wordpiece is aligned to every token of the span whose characters it overlaps: the tokens
    are consecutive, so it is enough to find the first and last covered character.
    """
    token_rows, wp_rows = [], []
    # Only tokens of this span may be aligned.
    lo, hi = span.start, span.end - 1
    # Covered characters of this span only (not the whole doc: docs can be very long).
    window = c2t[span.start_char : span.end_char + 1]
    covered = numpy.flatnonzero(window >= 0) + span.start_char
    for piece in pieces:
        first_pos = numpy.searchsorted(covered, piece.starts, side="left")
        last_pos = numpy.searchsorted(covered, piece.ends, side="left") - 1
        valid = (first_pos <= last_pos) & (piece.ends > piece.starts)
        first_pos = numpy.minimum(first_pos, len(covered) - 1)
        last_pos = numpy.maximum(last_pos, 0)
        first_tok = numpy.clip(c2t[covered[first_pos]], lo, hi) if len(covered) else first_pos
        last_tok = numpy.clip(c2t[covered[last_pos]], lo, hi) if len(covered) else last_pos
        counts = numpy.where(valid, last_tok - first_tok + 1, 0)
        counts = numpy.maximum(counts, 0)
        wp_index = numpy.arange(len(piece.ids), dtype="int64") + offset
        wp_rows.append(numpy.repeat(wp_index, counts))
        step = numpy.arange(int(counts.sum())) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
        token_rows.append(numpy.repeat(first_tok, counts) + step)
        offset += len(piece.ids)
    if not token_rows:
        empty = numpy.zeros((0,), dtype="int64")
        return empty, empty
    return numpy.concatenate(token_rows), numpy.concatenate(wp_rows)
