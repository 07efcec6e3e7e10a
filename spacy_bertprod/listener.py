"""Torch-free transformer listener: token vectors for ner/textcat heads from `doc._.trf_data`.

Same layer structure as `spacy-transformers.TransformerListener.v1`
(chain(listener, trfs2arrays(pooling))), so a head trained against the stock listener loads its
weights unchanged after `compress` swaps the architecture name.
"""

from dataclasses import replace
from typing import Callable, List, Optional

import numpy
from spacy.errors import Errors
from spacy.tokens import Doc
from thinc.api import Model, chain
from thinc.types import Floats2d, Ragged

from .data import TransformerData


class TransformerListener(Model):
    """Receives the upstream transformer's output for the current batch (training), or reads
    `doc._.trf_data` (prediction)."""

    name = "bertprod-transformer-listener"

    def __init__(self, upstream_name: str, *, forward: Callable = None, layers: Optional[List[Model]] = None):
        forward = forward or _listener_forward
        Model.__init__(self, name=self.name, forward=forward, layers=layers or [], dims={"nO": None})
        self.upstream_name = upstream_name
        self._batch_id: Optional[int] = None
        self._outputs: Optional[List[TransformerData]] = None
        self._backprop: Optional[Callable] = None

    @classmethod
    def get_batch_id(cls, docs: List[Doc]) -> int:
        return sum(sum(token.orth for token in doc) for doc in docs)

    def receive(self, batch_id: int, outputs: List[TransformerData], backprop: Callable) -> None:
        self._batch_id = batch_id
        self._outputs = outputs
        self._backprop = backprop

    def backprop_and_clear(self, d_outputs):
        result = self._backprop(d_outputs) if self._backprop is not None else None
        self._batch_id = self._outputs = self._backprop = None
        return result

    def verify_inputs(self, docs: List[Doc]) -> None:
        if self._batch_id is None:
            raise ValueError(f"{Errors.E954} Is the bertprod_transformer component before this one in the pipeline?")
        batch_id = self.get_batch_id(docs)
        if batch_id != self._batch_id:
            raise ValueError(Errors.E953.format(id1=batch_id, id2=self._batch_id))


def _listener_forward(model: TransformerListener, docs: List[Doc], is_train: bool):
    if is_train and model._batch_id is not None:
        model.verify_inputs(docs)
        return model._outputs, model.backprop_and_clear
    # Prediction, or training with a frozen (annotating) transformer: read the docs.
    outputs = []
    for doc in docs:
        data = doc._.trf_data
        if data is None:
            if is_train:
                raise ValueError(
                    "doc._.trf_data is not set. With a frozen transformer, list it in "
                    "[training] annotating_components so that it annotates the training docs."
                )
            data = TransformerData.zeros(len(doc), model.get_dim("nO") or 0)
        elif not isinstance(data, TransformerData):
            raise ValueError(
                f"doc._.trf_data holds a {type(data).__name__}, not spacy_bertprod's "
                "TransformerData: this listener listens to a bertprod_transformer component. "
                "For a spacy-transformers `transformer`, use spacy-transformers.TransformerListener.v1."
            )
        outputs.append(data)
    return outputs, lambda d_outputs: []


def trfs2arrays(pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model:
    """Pool the wordpiece vectors aligned to each token into one vector per token."""
    return Model("trfs2arrays", _pool_forward, layers=[pooling], attrs={"grad_factor": grad_factor})


def _pool_forward(model: Model, datas: List[TransformerData], is_train: bool):
    pooling = model.layers[0]
    grad_factor = model.attrs["grad_factor"]
    width = max((d.width for d in datas), default=0)
    rows, lengths, n_tokens = [], [], []
    for data in datas:
        rows.append(data.hidden[data.align.dataXd].reshape(-1, width))
        lengths.append(numpy.asarray(data.align.lengths, dtype="int32"))
        n_tokens.append(len(data.align.lengths))
    if not datas or sum(len(r) for r in rows) == 0:
        # Nothing aligned anywhere (empty docs, or docs the transformer never saw): thinc's
        # Ragged loses the width of empty data, so build the zero vectors directly.
        return [model.ops.alloc2f(n, width) for n in n_tokens], lambda d: [numpy.zeros_like(d_.hidden) for d_ in datas]
    flat = Ragged(model.ops.asarray2f(numpy.concatenate(rows)), model.ops.asarray1i(numpy.concatenate(lengths)))
    pooled, backprop_pooling = pooling(flat, is_train)
    outputs = model.ops.xp.split(pooled, numpy.cumsum(n_tokens)[:-1])

    def backprop(d_outputs: List[Floats2d]) -> List[numpy.ndarray]:
        d_rows = backprop_pooling(model.ops.xp.concatenate(d_outputs)).dataXd
        d_hiddens = []
        start = 0
        for data in datas:
            n_rows = len(data.align.dataXd)
            d_hidden = numpy.zeros(data.hidden.shape, dtype="float32")
            if n_rows:
                numpy.add.at(d_hidden, data.align.dataXd, model.ops.to_numpy(d_rows[start : start + n_rows]))
            start += n_rows
            d_hiddens.append(d_hidden * grad_factor)
        return d_hiddens

    return list(outputs), backprop


def _pooling_listener_forward(model: TransformerListener, docs: List[Doc], is_train: bool):
    outputs, backprop_outputs = _listener_forward(model, docs, is_train)
    vectors, backprop_pooling = model.layers[0](outputs, is_train)
    return vectors, lambda d_vectors: backprop_outputs(backprop_pooling(d_vectors))


def build_pooling_listener(pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*") -> Model:
    """A listener that holds its pooling, as spacy-curated-transformers' LastTransformerLayerListener
    does (listener -> pooling wrapper -> pooling), so heads trained against it load their weights."""
    listener = TransformerListener(
        upstream, forward=_pooling_listener_forward, layers=[trfs2arrays(pooling, grad_factor)]
    )
    listener.name = "bertprod-last-layer-listener"
    return listener


def build_listener(pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*") -> Model:
    listener = TransformerListener(upstream_name=upstream)
    model = chain(listener, trfs2arrays(pooling, grad_factor))
    model.set_ref("listener", listener)
    return model


def scalar_weight(num_layers: int) -> Model:
    """Every layer's output (embeddings first) -> their softmax-weighted sum times a scale, per
    wordpiece: spacy-curated-transformers' ScalarWeight at inference (its layer dropout only trains)."""
    return Model("scalar_weight", _scalar_weight_forward, init=_scalar_weight_init, dims={"nL": num_layers + 1})


def _scalar_weight_init(model: Model, X=None, Y=None) -> None:
    model.set_param("layer_weights", numpy.zeros((model.get_dim("nL"),), dtype="float32"))
    model.set_param("scale", numpy.ones((1,), dtype="float32"))


def _scalar_weight_forward(model: Model, datas: List[TransformerData], is_train: bool):
    if is_train:
        raise ValueError("A compressed pipeline's ScalarWeightingListener does not train: train the original.")
    weights = numpy.asarray(model.get_param("layer_weights"), dtype="float32")
    weights = numpy.exp(weights - weights.max())
    weights = (weights / weights.sum()).reshape(1, -1, 1)
    scale = numpy.float32(model.get_param("scale")[0])
    weighted = []
    for data in datas:
        if data.layers is None and len(data.hidden):
            raise ValueError(
                "A ScalarWeightingListener needs every layer's output, and this transformer gives only the last: "
                "re-create the pipeline with `python -m spacy bertprod compress`."
            )
        hidden = data.hidden if data.layers is None else (data.layers * weights).sum(axis=1) * scale
        weighted.append(replace(data, hidden=hidden.astype("float32")))
    return weighted, lambda d_weighted: d_weighted


def _weighted_listener_forward(model: TransformerListener, docs: List[Doc], is_train: bool):
    outputs, backprop_outputs = _listener_forward(model, docs, is_train)
    weighted, _ = model.layers[0](outputs, is_train)
    vectors, backprop_pooling = model.layers[1](weighted, is_train)
    return vectors, lambda d_vectors: backprop_outputs(backprop_pooling(d_vectors))


def build_scalar_weighting_listener(
    weighting: Model, pooling: Model[Ragged, Floats2d], grad_factor: float = 1.0, upstream: str = "*"
) -> Model:
    """spacy-curated-transformers' ScalarWeightingListener layout: listener -> (weighting, pooling)."""
    layers = [weighting, trfs2arrays(pooling, grad_factor)]
    listener = TransformerListener(upstream, forward=_weighted_listener_forward, layers=layers)
    listener.name = "bertprod-scalar-weighting-listener"
    return listener
