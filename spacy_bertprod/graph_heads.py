"""Text-classification heads computed inside the ONNX graph (torch-free, serving path).

`compress --heads-in-graph` appends a textcat head's pooling and output layer to the encoder's
ONNX graph (compress/heads.py), so ONNX Runtime returns each doc's scores next to its hidden
states and the Python head (listener pooling, thinc reductions, output layer) does not run. The
graph sees one padded sequence per row, so it scores the docs that fit in one window; a doc
with several windows (or none) is scored by the original head, which stays in the pipeline.
Which path a doc takes depends on the doc alone, so the same text gets the same answer in any
batch.

Three extra graph inputs carry spaCy's token alignment:
- `token_weights` (batch, tokens, wordpieces): row t averages the wordpieces aligned to token t,
  as the listener's reduce_mean pooling does (all zeros for a token aligned to nothing);
- `token_mask` (batch, tokens): 1 for a real token, 0 for padding (the max reduction);
- `pool_weights` (batch, 3, wordpieces): the first token's row, the last token's, and the mean of
  all token rows, so the linear reductions are one fixed-shape product per doc.
The graph is built so that a row's result never depends on the other rows or the padding, to
the bit (compress/heads.py).
"""

from typing import Callable, Dict, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model

from .backends.base import POOL_ROWS, POOL_WEIGHTS, TOKEN_MASK, TOKEN_WEIGHTS

GRAPH_HEAD = "spacy_bertprod.GraphHead.v1"


def alignment_inputs(rows: Sequence[int], aligns: Sequence, n_rows: int, width: int) -> Dict[str, numpy.ndarray]:
    """The head inputs for a padded batch of `n_rows` sequences `width` long.

    rows[i] is the batch row of a doc whose only sequence sits there, aligns[i] its token ->
    wordpiece alignment (a Ragged whose indices are positions in that sequence). Other rows stay
    zero: their graph scores are not used. Built with a fixed number of numpy calls per batch;
    each row's values depend on its own doc only (the mean row is accumulated pair by pair).
    """
    lengths = [numpy.asarray(a.lengths, dtype="int64") for a in aligns]
    n_tokens = numpy.asarray([len(x) for x in lengths], dtype="int64")
    # At least 2 token rows: ONNX Runtime multiplies a 1-row matrix on another code path (GEMV),
    # whose last bits differ, and a doc's token vectors must not depend on its batch-mates'.
    max_tokens = max(2, int(n_tokens.max(initial=0)))
    weights = numpy.zeros((n_rows, max_tokens, width), dtype="float32")
    mask = numpy.zeros((n_rows, max_tokens), dtype="float32")
    pool = numpy.zeros((n_rows, len(POOL_ROWS), width), dtype="float32")
    if len(rows):
        token_lengths = numpy.concatenate(lengths)
        token_row = numpy.repeat(numpy.asarray(rows, dtype="int64"), n_tokens)
        token_local = numpy.arange(len(token_lengths)) - numpy.repeat(numpy.cumsum(n_tokens) - n_tokens, n_tokens)
        mask[token_row, token_local] = 1.0
        pieces = numpy.concatenate([numpy.asarray(a.dataXd, dtype="int64").reshape(-1) for a in aligns])
        share = (1.0 / numpy.maximum(token_lengths, 1)).astype("float32")
        pair_row, pair_token = numpy.repeat(token_row, token_lengths), numpy.repeat(token_local, token_lengths)
        pair_share = numpy.repeat(share, token_lengths)
        weights[pair_row, pair_token, pieces] = pair_share
        pool[:, 0] = weights[:, 0]  # the first token
        n_of_pair = numpy.repeat(numpy.repeat(n_tokens, n_tokens), token_lengths)
        is_last = pair_token == n_of_pair - 1
        pool[pair_row[is_last], 1, pieces[is_last]] = pair_share[is_last]  # the last token
        numpy.add.at(pool, (pair_row, 2, pieces), pair_share / n_of_pair.astype("float32"))  # the mean token
    return {TOKEN_WEIGHTS: weights, TOKEN_MASK: mask, POOL_WEIGHTS: pool}


@registry.architectures(GRAPH_HEAD)
def create_graph_head(head: Model, component: str) -> Model:
    """The original textcat model, reading the scores the ONNX graph already computed.

    `head` is the component's own model (weights unchanged): it scores the docs the graph did not
    (several windows), and anything that trains or resizes the component sees it. `component` is
    the name the graph's output is stored under in `doc._.trf_data.head_scores`.
    """
    model = Model(
        "bertprod-graph-head", _graph_head_forward, layers=[head], attrs={"component": component}, dims={"nO": None}
    )
    for name in head.ref_names:
        model.set_ref(name, head.get_ref(name))
    for key in ("multi_label", "resize_output"):
        if key in head.attrs:
            model.attrs[key] = head.attrs[key]
    if head.has_dim("nO"):
        model.set_dim("nO", head.get_dim("nO"))
    return model


def python_head_of(model: Model) -> Model:
    """The component's own model inside a GraphHead.v1 (what scores docs the graph did not)."""
    return model.layers[0]


def _graph_head_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[numpy.ndarray, Callable]:
    head = model.layers[0]
    if is_train:
        return head(docs, is_train)
    component = model.attrs["component"]
    found = [_graph_scores(doc, component) for doc in docs]
    # Empty docs score zeros, as spaCy's textcat scores a batch of only empty docs (its
    # reductions refuse empty sequences): the same answer in any batch.
    rest = [i for i, scores in enumerate(found) if scores is None and len(docs[i])]
    rest_scores = model.ops.to_numpy(head.predict([docs[i] for i in rest])) if rest else None
    scores = numpy.zeros((len(docs), _n_labels(head, found, rest_scores)), dtype="float32")
    for i, row in enumerate(found):
        if row is not None:
            scores[i] = row
    if rest:
        scores[rest] = rest_scores
    return model.ops.asarray2f(scores), lambda d_scores: []


def _n_labels(head: Model, found, rest_scores) -> int:
    if rest_scores is not None:
        return rest_scores.shape[1]
    row = next((s for s in found if s is not None), None)
    return len(row) if row is not None else head.get_ref("output_layer").get_dim("nO")


def _graph_scores(doc: Doc, component: str):
    data = doc._.get("trf_data") if doc.has_extension("trf_data") else None
    head_scores = getattr(data, "head_scores", None) or {}
    return head_scores.get(component)
