"""The transformer layer shared by both backends: docs -> per-doc wordpieces, alignment, hidden states.

Windows of all docs in a batch are tokenized together, sorted by length and run in buckets of at
most `max_batch_items` padded wordpieces, cut where the padding saved pays for another encoder
call: short texts are not padded to the longest one.
"""

from typing import Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model

from .backends import EncoderBatch
from .backends.base import ALL_LAYERS_OUTPUT, ONNX_SESSION, head_output_name
from .data import TransformerData
from .errors import InvalidInput
from .graph_heads import alignment_inputs
from .span_getters import SpanGetter
from .tokenization import EncodedBatch, Wordpieces, WordpieceTokenizer, encode_docs

NAME = "bertprod_transformer_model"
ENCODER_REF = "encoder"
# The model's attrs: the span getter, the wordpiece tokenizer, the most padded wordpieces per call.
GET_SPANS, TOKENIZER, MAX_BATCH_ITEMS = "get_spans", "tokenizer", "max_batch_items"


def TransformerModel(
    encoder: Model, get_spans: SpanGetter, max_batch_items: int = 4096
) -> Model[List[Doc], List[TransformerData]]:
    """Wrap an encoder layer (ONNX or torch) with windowing, tokenization and alignment.

    The encoder is the ref "encoder" (`encoder_of`); the tokenizer is installed by `initialize`
    (torch, from the pretrained directory) or by loading a saved pipeline (`set_tokenizer`). Code
    outside this module and the backends reaches them through these functions, never by position.
    """
    if max_batch_items < 1:
        raise InvalidInput(f"max_batch_items must be positive, got {max_batch_items}.")
    return Model(
        NAME,
        _forward,
        layers=[encoder],
        refs={ENCODER_REF: encoder},
        attrs={GET_SPANS: get_spans, TOKENIZER: None, MAX_BATCH_ITEMS: max_batch_items},
        dims={"nO": None},
    )


def encoder_of(model: Model) -> Model:
    """The encoder layer (ONNX or torch) of a transformer model."""
    if model.has_ref(ENCODER_REF):
        return model.get_ref(ENCODER_REF)
    return model.layers[0]  # thinc's Model.copy() does not carry refs over; the encoder is the only layer


def set_tokenizer(model: Model, tokenizer: WordpieceTokenizer) -> None:
    model.attrs[TOKENIZER] = tokenizer


def max_batch_items_of(model: Model) -> int:
    return int(model.attrs[MAX_BATCH_ITEMS])


def set_max_batch_items(model: Model, max_batch_items: int) -> None:
    model.attrs[MAX_BATCH_ITEMS] = int(max_batch_items)


def get_tokenizer(model: Model) -> WordpieceTokenizer:
    tokenizer = model.attrs[TOKENIZER]
    if tokenizer is None:
        raise InvalidInput(
            "The bertprod transformer has no tokenizer yet: call nlp.initialize() (torch backend) "
            "or load a saved pipeline."
        )
    return tokenizer


def encode_windows(model: Model, docs: List[Doc]) -> EncodedBatch:
    """Windows -> wordpiece sequences, how many belong to each doc, and each doc's alignment."""
    tokenizer = get_tokenizer(model)
    if getattr(tokenizer, "whole_docs", False):  # strided piece windows (pieces.py)
        return tokenizer.encode_batch(docs)
    nested_spans = model.attrs[GET_SPANS](docs)
    if len(nested_spans) != len(docs):
        raise InvalidInput(f"The span getter returned spans for {len(nested_spans)} of {len(docs)} docs.")
    doc_spans = [[span for span in spans if len(span)] for spans in nested_spans]
    return encode_docs(tokenizer, docs, doc_spans)


# What one more encoder call costs, in padded wordpiece positions: cutting a bucket pays when it
# saves more padding than this (measured: reports/speed/README.md).
CALL_COST = 64


def plan_buckets(lengths: List[int], max_batch_items: int, call_cost: int = CALL_COST) -> List[List[int]]:
    """Group sequence indices into padded batches of at most max_batch_items positions.

    Sequences are sorted by length and cut into runs so that padded positions plus `call_cost`
    per call are minimal (dynamic programming over the distinct lengths): a run of 8-wordpiece
    queries is not padded to 40 because a few 40-wordpiece ones share its batch, and a handful
    of stragglers does not get a call of its own. A sequence's output never depends on its
    bucket (batch invariance), only the speed does.
    """
    if not lengths:
        return []
    order = numpy.argsort(numpy.asarray(lengths, dtype="int64"), kind="stable")
    sorted_lengths = numpy.asarray(lengths, dtype="int64")[order]
    distinct, counts = numpy.unique(sorted_lengths, return_counts=True)
    rows_before = numpy.concatenate([[0], numpy.cumsum(counts)])  # rows in groups [0, k)
    n_groups = len(distinct)
    best = numpy.zeros(n_groups + 1, dtype="float64")
    cut = numpy.zeros(n_groups + 1, dtype="int64")
    for j in range(1, n_groups + 1):
        # A run of groups i..j-1 is padded to the longest, distinct[j-1], and split into calls
        # of at most max_batch_items positions.
        width = int(distinct[j - 1])
        rows = rows_before[j] - rows_before[:j]
        per_call = max(1, max_batch_items // width)
        costs = best[:j] + rows * width + call_cost * -(-rows // per_call)
        cut[j] = int(numpy.argmin(costs))
        best[j] = costs[cut[j]]
    runs = []
    j = n_groups
    while j > 0:
        runs.append((int(rows_before[cut[j]]), int(rows_before[j]), int(distinct[j - 1])))
        j = int(cut[j])
    buckets: List[List[int]] = []
    for start, end, width in reversed(runs):
        per_call = max(1, max_batch_items // width)
        for chunk in range(start, end, per_call):
            buckets.append(order[chunk : min(end, chunk + per_call)].tolist())
    return buckets


def onnx_session_of(encoder: Model):
    """The encoder's ONNX Runtime session (backends/onnx.py's OnnxSession), None for torch."""
    return encoder.attrs.get(ONNX_SESSION)


def graph_heads_of(encoder: Model) -> List[str]:
    """The components whose scores the encoder's ONNX graph computes (none for torch)."""
    session = onnx_session_of(encoder)
    return session.head_components if session is not None else []


def _run_session(encoder, batch, bucket, encoded: EncodedBatch, heads, all_layers: bool, seq_scores):
    """Hidden states (and every layer's, when `all_layers`) and the graph heads' scores of one
    padded batch; the scores of rows whose doc has exactly this one sequence go to `seq_scores`
    (other rows' are not used)."""
    names = ["last_hidden_state"] + ([ALL_LAYERS_OUTPUT] if all_layers else [])
    if heads:
        seq_doc = encoded.seq_doc
        rows = [row for row, i in enumerate(bucket) if encoded.doc_n_seqs[seq_doc[i]] == 1]
        row_aligns = [encoded.aligns[seq_doc[bucket[row]]] for row in rows]
        batch.extra = alignment_inputs(rows, row_aligns, *batch.input_ids.shape)
        names += [head_output_name(c) for c in heads]
    outputs = onnx_session_of(encoder).run_outputs(batch, names)
    hidden, layers = outputs[0], (outputs[1] if all_layers else None)
    if heads:
        for row in rows:
            seq_scores[bucket[row]] = {c: s[row] for c, s in zip(heads, outputs[-len(heads) :])}
    return hidden, layers


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
    encoder = encoder_of(model)
    encoded = encode_windows(model, docs)
    seq_lengths = [len(s.ids) for s in encoded.sequences]
    session = None if is_train else onnx_session_of(encoder)
    heads = graph_heads_of(encoder) if session is not None else []
    all_layers = session is not None and session.has_all_layers
    seq_hidden: List[Optional[numpy.ndarray]] = [None] * len(seq_lengths)
    seq_layers: List[Optional[numpy.ndarray]] = [None] * len(seq_lengths)
    seq_scores: Dict[int, Dict[str, numpy.ndarray]] = {}
    backprops = []
    for bucket in plan_buckets(seq_lengths, max_batch_items_of(model)):
        batch = pad_batch([encoded.sequences[i] for i in bucket], get_tokenizer(model).pad_id)
        if heads or all_layers:
            (hidden, layers), backprop = (
                _run_session(encoder, batch, bucket, encoded, heads, all_layers, seq_scores),
                None,
            )
        else:
            (hidden, backprop), layers = encoder(batch, is_train), None
        hidden = model.ops.to_numpy(hidden) if not isinstance(hidden, numpy.ndarray) else hidden
        for row, i in enumerate(bucket):
            seq_hidden[i] = hidden[row, : seq_lengths[i]]
            if layers is not None:
                seq_layers[i] = layers[row, : seq_lengths[i]]
        backprops.append((bucket, hidden.shape, backprop))
    outputs = _doc_outputs(encoded, seq_hidden, seq_layers if all_layers else None, seq_scores, model.get_dim("nO"))

    def backprop(d_hiddens: List[numpy.ndarray]) -> List[Doc]:
        # Split each doc's gradient back into its sequences, then re-pad per bucket.
        d_seqs: List[numpy.ndarray] = []
        for d_hidden, n_seqs_doc in zip(d_hiddens, encoded.doc_n_seqs):
            first = len(d_seqs)
            if n_seqs_doc:
                d_seqs.extend(encoded.split(d_hidden, seq_lengths[first : first + n_seqs_doc]))
        for bucket, shape, bp in backprops:
            d_padded = numpy.zeros(shape, dtype="float32")
            for row, i in enumerate(bucket):
                d_padded[row, : seq_lengths[i]] = d_seqs[i]
            bp(model.ops.asarray(d_padded))
        return docs

    return outputs, backprop


def _doc_outputs(encoded: EncodedBatch, seq_hidden, seq_layers, seq_scores, width: int) -> List[TransformerData]:
    """Each doc's TransformerData from its sequences' outputs (joined as `encoded` says)."""
    outputs: List[TransformerData] = []
    start = 0
    for n_seqs, align in zip(encoded.doc_n_seqs, encoded.aligns):
        doc_seqs = range(start, start + n_seqs)
        start += n_seqs
        layers = None
        if n_seqs:
            hidden = encoded.join([seq_hidden[i] for i in doc_seqs])
            input_ids = encoded.join_ids([encoded.sequences[i].ids for i in doc_seqs])
            if seq_layers is not None:
                layers = encoded.join([seq_layers[i] for i in doc_seqs])
        else:
            hidden = numpy.zeros((0, width), dtype="float32")
            input_ids = numpy.zeros((0,), dtype="int64")
        lengths = [len(encoded.sequences[i].ids) for i in doc_seqs] if encoded.stride is None else [len(hidden)]
        scores = seq_scores.get(doc_seqs[0], {}) if n_seqs == 1 else {}
        outputs.append(
            TransformerData(
                input_ids=input_ids,
                hidden=hidden,
                align=align,
                seq_lengths=numpy.asarray(lengths, dtype="int32"),
                head_scores=scores,
                layers=layers,
            )
        )
    return outputs
