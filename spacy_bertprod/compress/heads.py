"""`compress --heads-in-graph`: append text-classification heads to the encoder's ONNX graph.

A spaCy `textcat` / `textcat_multilabel` head on spacy.TextCatReduce.v1 that listens to the
transformer with mean pooling is a fixed function of the hidden states: average each token's
wordpieces, reduce the doc's tokens (first / last / max / mean, concatenated in spaCy's order),
one affine layer, softmax or logistic. Written as ONNX nodes after the (fp32 or int8) encoder,
in float32 and never quantised, it gives the same scores without the Python per-doc work. The
runtime side (inputs, fallback for docs with several windows) is spacy_bertprod/graph_heads.py.
Heads of other shapes stay in Python, and the report says why.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy

from ..backends.base import POOL_ROWS, POOL_WEIGHTS, TOKEN_MASK, TOKEN_WEIGHTS, head_output_name
from ..graph_heads import GRAPH_HEAD, python_head_of

TEXTCAT_FACTORIES = ("textcat", "textcat_multilabel")
LISTENERS = (
    "spacy_bertprod.TransformerListener.v1",
    "spacy-transformers.TransformerListener.v1",
    "spacy_bertprod.LastLayerListener.v1",
    "spacy-curated-transformers.LastTransformerLayerListener.v1",
)
REDUCTIONS = ("first", "last", "max", "mean")  # spaCy's concatenation order (TextCatReduce.v1)


@dataclass
class HeadSpec:
    """What one head computes: reductions, the output layer's weights, its activation."""

    component: str
    reductions: Tuple[str, ...]
    W: numpy.ndarray  # (labels, reductions x width)
    b: numpy.ndarray  # (labels,)
    activation: str  # "softmax", "sigmoid" or "none"
    temperature: float = 1.0


def plan_heads(nlp, config: Dict, trf_name: str) -> Tuple[List[HeadSpec], Dict[str, str]]:
    """The heads that can move into the graph, and for every other listening component why not.

    `config` is the rewritten (ONNX) pipeline's [components]; weights come from `nlp`, the
    original pipeline."""
    specs, kept_in_python = [], {}
    for name, block in config.items():
        if name == trf_name or not listens_to(block.get("model", {}), trf_name):
            continue
        reason = _why_not(block, trf_name)
        if reason:
            kept_in_python[name] = reason
        else:
            specs.append(_spec(name, block["model"], nlp.get_pipe(name).model))
    return specs, kept_in_python


def _is_listener(node: Dict, trf_name: str) -> bool:
    return node.get("@architectures") in LISTENERS and node.get("upstream", "*") in ("*", trf_name)


def listens_to(node, trf_name: str) -> bool:
    if not isinstance(node, dict):
        return False
    return _is_listener(node, trf_name) or any(listens_to(v, trf_name) for v in node.values())


def _why_not(block: Dict, trf_name: str) -> Optional[str]:
    model = block.get("model", {})
    if block.get("factory") not in TEXTCAT_FACTORIES:
        return f"a '{block.get('factory')}' component: only textcat and textcat_multilabel heads move into the graph"
    if model.get("@architectures") != "spacy.TextCatReduce.v1":
        return f"{model.get('@architectures')}: only spacy.TextCatReduce.v1 heads move into the graph"
    tok2vec = model.get("tok2vec", {})
    if not _is_listener(tok2vec, trf_name):
        return "its tok2vec is not a transformer listener of this transformer"
    if tok2vec.get("pooling", {}).get("@layers") != "reduce_mean.v1":
        return f"listener pooling {tok2vec.get('pooling')}: only reduce_mean.v1 moves into the graph"
    return None


def _spec(name: str, model_config: Dict, model) -> HeadSpec:
    reductions = tuple(r for r in REDUCTIONS if model_config.get(f"use_reduce_{r}"))
    output = model.get_ref("output_layer")
    W = numpy.asarray(model.ops.to_numpy(output.get_param("W")), dtype="float32")
    b = numpy.asarray(model.ops.to_numpy(output.get_param("b")), dtype="float32")
    if model_config.get("exclusive_classes"):
        normalize = output.attrs.get("softmax_normalize", True)
        activation, temperature = (
            ("softmax" if normalize else "none"),
            float(output.attrs.get("softmax_temperature", 1)),
        )
    else:
        activation, temperature = "sigmoid", 1.0
    return HeadSpec(name, reductions, W, b, activation, temperature)


def graph_head_config(model_config: Dict, component: str) -> Dict:
    """The component's model block in the written pipeline: its own model inside GraphHead.v1."""
    return {"@architectures": GRAPH_HEAD, "component": component, "head": model_config}


def append_heads(model_bytes: bytes, specs: List[HeadSpec]) -> bytes:
    """The encoder graph with `token_weights` / `token_mask` inputs and one scores output per head."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    names = [o.name for o in graph.output]
    hidden = "last_hidden_state" if "last_hidden_state" in names else names[0]
    graph.input.extend(
        [
            helper.make_tensor_value_info(TOKEN_WEIGHTS, TensorProto.FLOAT, ["batch", "tokens", "sequence"]),
            helper.make_tensor_value_info(TOKEN_MASK, TensorProto.FLOAT, ["batch", "tokens"]),
            helper.make_tensor_value_info(POOL_WEIGHTS, TensorProto.FLOAT, ["batch", len(POOL_ROWS), "sequence"]),
        ]
    )
    builder = _GraphBuilder(opset)
    shared = _shared_pooling(builder, hidden, {r for spec in specs for r in spec.reductions})
    for spec in specs:
        out = head_output_name(spec.component)
        _head_nodes(builder, shared, spec, out)
        graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", int(spec.W.shape[0])]))
    graph.node.extend(builder.nodes)
    graph.initializer.extend(builder.constants)
    # No onnx.checker here: exported graphs with If subgraphs (DeBERTa) fail its topological-order
    # rule although ONNX Runtime runs them; the session built from these bytes is the check.
    return model.SerializeToString()


class _GraphBuilder:
    """Nodes with unique names, and the constants (initializers) they read."""

    def __init__(self, opset: int):
        self.opset, self.nodes, self.constants, self._n = opset, [], [], 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"bertprod_head/{stem}_{self._n}"

    def add(self, op: str, inputs: List[str], stem: str, *, out: Optional[str] = None, **attrs) -> str:
        """One node; its output gets a fresh name unless `out` (a graph output) is given."""
        from onnx import helper

        out = out or self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, values, dtype="int64", stem: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.constants.append(numpy_helper.from_array(numpy.asarray(values, dtype=dtype), name))
        return name

    def reduce(self, op: str, x: str, axis: int, keepdims: int = 0) -> str:
        # ReduceSum takes axes as an input from opset 13, the other reductions from opset 18.
        if op == "ReduceSum" or self.opset >= 18:
            return self.add(op, [x, self.const([axis])], op, keepdims=keepdims)
        return self.add(op, [x], op, axes=[axis], keepdims=keepdims)


def _shared_pooling(g: _GraphBuilder, hidden: str, needed: set) -> Dict[str, str]:
    """The reductions asked for, each (batch, width).

    Built from ops whose result for a row depends on that row alone, to the bit, whatever the
    batch size and padding (measured on ONNX Runtime's CPU kernels): batched MatMul with at least
    2 rows per item (the alignment inputs guarantee it), ReduceMax, and, for the output layer
    below, MatMul with a 2-D weight + Add. ReduceSum over the token axis and Gemm are not.
    """
    pooled = {}
    if needed & set(POOL_ROWS):  # first / last / mean: the pool_weights rows times the hidden states
        linear = g.add("MatMul", [POOL_WEIGHTS, hidden], "pooled")  # (batch, 3, width)
        for i, row in enumerate(POOL_ROWS):
            if row in needed:
                pooled[row] = g.add("Gather", [linear, g.const(i)], row, axis=1)
    if "max" in needed:
        tokens = g.add("MatMul", [TOKEN_WEIGHTS, hidden], "token_vectors")  # (batch, tokens, width)
        is_token = g.add("Cast", [g.add("Unsqueeze", [TOKEN_MASK, g.const([2])], "mask3")], "is_token", to=9)
        lowest = g.const([numpy.finfo("float32").min], "float32")
        pooled["max"] = g.reduce("ReduceMax", g.add("Where", [is_token, tokens, lowest], "masked"), 1)
    return pooled


def _head_nodes(g: _GraphBuilder, pooled: Dict[str, str], spec: HeadSpec, out: str) -> None:
    parts = [pooled[r] for r in spec.reductions]
    features = parts[0] if len(parts) == 1 else g.add("Concat", parts, "features", axis=-1)
    # MatMul + Add, not Gemm: ONNX Runtime's Gemm gives a 1-row batch other last bits.
    W = g.const(numpy.ascontiguousarray(spec.W.T), "float32", f"{spec.component}_W")  # (features, labels)
    b = g.const(spec.b, "float32", f"{spec.component}_b")
    logits = g.add("Add", [g.add("MatMul", [features, W], "affine"), b], "logits")
    if spec.activation == "softmax":
        if spec.temperature != 1.0:
            logits = g.add("Div", [logits, g.const([spec.temperature], "float32")], "tempered")
        g.add("Softmax", [logits], "scores", out=out, axis=-1)
    else:
        g.add("Sigmoid" if spec.activation == "sigmoid" else "Identity", [logits], "scores", out=out)


def head_parity(nlp, trf_name: str, texts: List[str], components: List[str]) -> Dict[str, Dict]:
    """Per head in the graph: on how many sample docs the graph scored it, and the largest
    difference to the same head run in Python on the same hidden states."""
    docs = list(nlp.get_pipe(trf_name).pipe(nlp.make_doc(t) for t in texts))
    result = {}
    for component in components:
        wrapper = nlp.get_pipe(component).model
        in_graph = [doc for doc in docs if component in doc._.trf_data.head_scores]
        diff = 0.0
        if in_graph:
            diff = float(numpy.abs(wrapper.predict(in_graph) - python_head_of(wrapper).predict(in_graph)).max())
        result[component] = {"n_docs": len(docs), "scored_in_graph": len(in_graph), "max_abs_diff": diff}
    return result
