"""The transformer layer shared by both backends: docs -> per-doc wordpieces, alignment, hidden states.

Windows of all docs in a batch are sorted by length and run in buckets of at most
`max_batch_items` padded wordpieces: short texts are not padded to the longest one, which is
where most of the speed of the compressed pipeline comes from.
"""
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Ragged

from .backends import EncoderBatch
from .data import TransformerData
from .span_getters import SpanGetter
from .tokenization import WordpieceTokenizer, Wordpieces, align_wordpieces, char_to_token

NAME = "bertprod_transformer_model"


def TransformerModel(
    encoder: Model, get_spans: SpanGetter, max_batch_items: int = 4096
) -> Model[List[Doc], List[TransformerData]]:
    """Wrap an encoder layer (ONNX or torch) with windowing, tokenization and alignment.

    The tokenizer (attrs["tokenizer"]) is installed by `initialize` (torch, from the pretrained
    directory) or by loading a saved pipeline.
    """
    if max_batch_items < 1:
        raise ValueError(f"max_batch_items must be positive, got {max_batch_items}.")
    return Model(
        NAME,
        _forward,
        layers=[encoder],
        attrs={"get_spans": get_spans, "tokenizer": None, "max_batch_items": max_batch_items},
        dims={"nO": None},
    )


def get_tokenizer(model: Model) -> WordpieceTokenizer:
    tokenizer = model.attrs["tokenizer"]
    if tokenizer is None:
        raise ValueError(
            "The bertprod transformer has no tokenizer yet: call nlp.initialize() (torch backend) "
            "or load a saved pipeline."
        )
    return tokenizer


def _encode_docs(model: Model, docs: List[Doc]):
    """Windows -> wordpiece sequences, plus each doc's token alignment."""
    tokenizer = get_tokenizer(model)
    nested_spans = model.attrs["get_spans"](docs)
    if len(nested_spans) != len(docs):
        raise ValueError(f"The span getter returned spans for {len(nested_spans)} of {len(docs)} docs.")
    sequences: List[Wordpieces] = []
    doc_n_seqs: List[int] = []
    aligns: List[Ragged] = []
    for doc, spans in zip(docs, nested_spans):
        c2t = char_to_token(doc)
        n_before = len(sequences)
        token_rows, wp_rows, offset = [], [], 0
        spans = [span for span in spans if len(span)]
        for span, pieces in zip(spans, tokenizer.encode_spans(spans)):
            tok, wp = align_wordpieces(c2t, span, pieces, offset)
            token_rows.append(tok)
            wp_rows.append(wp)
            offset += sum(len(p.ids) for p in pieces)
            sequences.extend(pieces)
        doc_n_seqs.append(len(sequences) - n_before)
        aligns.append(_to_ragged(len(doc), token_rows, wp_rows))
    return sequences, doc_n_seqs, aligns


def _to_ragged(n_tokens: int, token_rows: List[numpy.ndarray], wp_rows: List[numpy.ndarray]) -> Ragged:
    if token_rows:
        tokens = numpy.concatenate(token_rows)
        wps = numpy.concatenate(wp_rows)
    else:
        tokens = wps = numpy.zeros((0,), dtype="int64")
    order = numpy.lexsort((wps, tokens))  # by token, then wordpiece (as spacy-transformers)
    lengths = numpy.bincount(tokens, minlength=n_tokens).astype("int32")
    return Ragged(wps[order].astype("int32"), lengths)


def plan_buckets(lengths: List[int], max_batch_items: int) -> List[List[int]]:
    """Group sequence indices by length so that each padded batch holds <= max_batch_items."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets: List[List[int]] = []
    current: List[int] = []
    for i in order:
        # Sorted ascending, so the newest sequence is the longest of its bucket.
        if current and (len(current) + 1) * lengths[i] > max_batch_items:
            buckets.append(current)
            current = []
        current.append(i)
    if current:
        buckets.append(current)
    return buckets


def pad_batch(sequences: List[Wordpieces], pad_id: int) -> EncoderBatch:
    length = max(len(s.ids) for s in sequences)
    input_ids = numpy.full((len(sequences), length), pad_id, dtype="int64")
    mask = numpy.zeros((len(sequences), length), dtype="int64")
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq.ids)] = seq.ids
        mask[row, : len(seq.ids)] = 1
    return EncoderBatch(input_ids, mask)


def encoder_batches(tokenizer: WordpieceTokenizer, spans, max_batch_items: int = 2048):
    """Padded, length-bucketed batches of the wordpieces of `spans` (sample text, calibration)."""
    sequences = [p for pieces in tokenizer.encode_spans([s for s in spans if len(s)]) for p in pieces]
    for bucket in plan_buckets([len(s.ids) for s in sequences], max_batch_items):
        yield pad_batch([sequences[i] for i in bucket], tokenizer.pad_id)


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[TransformerData], Callable]:
    encoder = model.layers[0]
    tokenizer = get_tokenizer(model)
    width = model.get_dim("nO")
    sequences, doc_n_seqs, aligns = _encode_docs(model, docs)
    seq_lengths = [len(s.ids) for s in sequences]
    buckets = plan_buckets(seq_lengths, model.attrs["max_batch_items"])
    seq_hidden: List[Optional[numpy.ndarray]] = [None] * len(sequences)
    backprops = []
    for bucket in buckets:
        hidden, backprop = encoder(pad_batch([sequences[i] for i in bucket], tokenizer.pad_id), is_train)
        hidden = model.ops.to_numpy(hidden) if not isinstance(hidden, numpy.ndarray) else hidden
        for row, i in enumerate(bucket):
            seq_hidden[i] = hidden[row, : seq_lengths[i]]
        backprops.append((bucket, hidden.shape, backprop))
    outputs: List[TransformerData] = []
    start = 0
    for doc, n_seqs, align in zip(docs, doc_n_seqs, aligns):
        doc_seqs = range(start, start + n_seqs)
        start += n_seqs
        if n_seqs:
            hidden = numpy.concatenate([seq_hidden[i] for i in doc_seqs], axis=0)
            input_ids = numpy.concatenate([sequences[i].ids for i in doc_seqs])
        else:
            hidden = numpy.zeros((0, width), dtype="float32")
            input_ids = numpy.zeros((0,), dtype="int64")
        outputs.append(TransformerData(input_ids=input_ids, hidden=hidden, align=align))

    def backprop(d_hiddens: List[numpy.ndarray]) -> List[Doc]:
        # Split each doc's gradient back into its sequences, then re-pad per bucket.
        d_seqs: List[numpy.ndarray] = []
        for d_hidden, n_seqs_doc in zip(d_hiddens, doc_n_seqs):
            offset = 0
            for i in range(len(d_seqs), len(d_seqs) + n_seqs_doc):
                d_seqs.append(d_hidden[offset : offset + seq_lengths[i]])
                offset += seq_lengths[i]
        for bucket, shape, bp in backprops:
            d_padded = numpy.zeros(shape, dtype="float32")
            for row, i in enumerate(bucket):
                d_padded[row, : seq_lengths[i]] = d_seqs[i]
            bp(model.ops.asarray(d_padded))
        return docs

    return outputs, backprop
