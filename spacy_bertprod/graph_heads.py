"""Text-classification heads computed inside the ONNX graph (torch-free, serving path).

`compress --heads-in-graph` appends a textcat head's pooling and output layer to the encoder's
ONNX graph (compress/heads.py), so ONNX Runtime returns each doc's scores next to its hidden
states and the Python head (listener pooling, thinc reductions, output layer) does not run. The
graph sees one padded sequence per row, so it scores the docs that fit in one window; a doc
with several windows (or none) is scored by the original head, which stays in the pipeline.
Which path a doc takes depends on the doc alone, so the same text gets the same answer in any
batch.

Two extra graph inputs carry spaCy's token alignment:
- `token_weights` (batch, tokens, wordpieces): row t averages the wordpieces aligned to token t,
  as the listener's reduce_mean pooling does (all zeros for a token aligned to nothing);
- `token_mask` (batch, tokens): 1 for a real token, 0 for padding.
"""

from typing import Callable, Dict, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model

TOKEN_WEIGHTS = "token_weights"
TOKEN_MASK = "token_mask"
HEAD_OUTPUT_PREFIX = "bertprod_head."
GRAPH_HEAD = "spacy_bertprod.GraphHead.v1"


def head_output_name(component: str) -> str:
    return HEAD_OUTPUT_PREFIX + component


def head_components(output_names: Sequence[str]) -> List[str]:
    """The components whose scores an ONNX graph computes, from its output names."""
    return [n[len(HEAD_OUTPUT_PREFIX) :] for n in output_names if n.startswith(HEAD_OUTPUT_PREFIX)]


def alignment_inputs(rows: Sequence[int], aligns: Sequence, n_rows: int, width: int) -> Dict[str, numpy.ndarray]:
    """`token_weights` and `token_mask` for a padded batch of `n_rows` sequences `width` long.

    rows[i] is the batch row of a doc whose only sequence sits there, aligns[i] its token ->
    wordpiece alignment (a Ragged whose indices are positions in that sequence). Other rows stay
    zero: their graph scores are not used. Built with a fixed number of numpy calls per batch.
    """
    lengths = [numpy.asarray(a.lengths, dtype="int64") for a in aligns]
    n_tokens = numpy.asarray([len(x) for x in lengths], dtype="int64")
    max_tokens = max(1, int(n_tokens.max(initial=0)))
    weights = numpy.zeros((n_rows, max_tokens, width), dtype="float32")
    mask = numpy.zeros((n_rows, max_tokens), dtype="float32")
    if len(rows):
        token_lengths = numpy.concatenate(lengths)
        token_row = numpy.repeat(numpy.asarray(rows, dtype="int64"), n_tokens)
        token_local = numpy.arange(len(token_lengths)) - numpy.repeat(numpy.cumsum(n_tokens) - n_tokens, n_tokens)
        mask[token_row, token_local] = 1.0
        pieces = numpy.concatenate([numpy.asarray(a.dataXd, dtype="int64").reshape(-1) for a in aligns])
        share = (1.0 / numpy.maximum(token_lengths, 1)).astype("float32")
        weights[numpy.repeat(token_row, token_lengths), numpy.repeat(token_local, token_lengths), pieces] = (
            numpy.repeat(share, token_lengths)
        )
    return {TOKEN_WEIGHTS: weights, TOKEN_MASK: mask}


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
