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

from ..graph_heads import GRAPH_HEAD, TOKEN_MASK, TOKEN_WEIGHTS, head_output_name

TEXTCAT_FACTORIES = ("textcat", "textcat_multilabel")
LISTENERS = ("spacy_bertprod.TransformerListener.v1", "spacy-transformers.TransformerListener.v1")
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
        if name == trf_name or not _listens(block.get("model", {}), trf_name):
            continue
        reason = _why_not(block, trf_name)
        if reason:
            kept_in_python[name] = reason
        else:
            specs.append(_spec(name, block["model"], nlp.get_pipe(name).model))
    return specs, kept_in_python


def _listens(node, trf_name: str) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("@architectures") in LISTENERS and node.get("upstream", "*") in ("*", trf_name):
        return True
    return any(_listens(v, trf_name) for v in node.values())


def _why_not(block: Dict, trf_name: str) -> Optional[str]:
    model = block.get("model", {})
    if block.get("factory") not in TEXTCAT_FACTORIES:
        return f"a '{block.get('factory')}' component: only textcat and textcat_multilabel heads move into the graph"
    if model.get("@architectures") != "spacy.TextCatReduce.v1":
        return f"{model.get('@architectures')}: only spacy.TextCatReduce.v1 heads move into the graph"
    tok2vec = model.get("tok2vec", {})
    if tok2vec.get("@architectures") not in LISTENERS or not _listens(tok2vec, trf_name):
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
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    names = [o.name for o in graph.output]
    hidden = "last_hidden_state" if "last_hidden_state" in names else names[0]
    graph.input.extend(
        [
            helper.make_tensor_value_info(TOKEN_WEIGHTS, TensorProto.FLOAT, ["batch", "tokens", "sequence"]),
            helper.make_tensor_value_info(TOKEN_MASK, TensorProto.FLOAT, ["batch", "tokens"]),
        ]
    )
    nodes, inits = _GraphBuilder(opset), []
    shared = _shared_pooling(nodes, hidden, {r for spec in specs for r in spec.reductions})
    for spec in specs:
        out = head_output_name(spec.component)
        _head_nodes(nodes, shared, spec, out, inits, numpy_helper)
        graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", int(spec.W.shape[0])]))
    graph.node.extend(nodes.nodes)
    graph.initializer.extend(inits + nodes.constants)
    # No onnx.checker here: exported graphs with If subgraphs (DeBERTa) fail its topological-order
    # rule although ONNX Runtime runs them; the session built from these bytes is the check.
    return model.SerializeToString()


class _GraphBuilder:
    """Nodes with unique names, and the int64 constants they need."""

    def __init__(self, opset: int):
        self.opset, self.nodes, self.constants, self._n = opset, [], [], 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"bertprod_head/{stem}_{self._n}"

    def add(self, op: str, inputs: List[str], stem: str, **attrs) -> str:
        from onnx import helper

        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, values, dtype="int64") -> str:
        from onnx import numpy_helper

        name = self.name("const")
        self.constants.append(numpy_helper.from_array(numpy.asarray(values, dtype=dtype), name))
        return name

    def reduce(self, op: str, x: str, axis: int, keepdims: int = 0) -> str:
        # ReduceSum takes axes as an input from opset 13, the other reductions from opset 18.
        if op == "ReduceSum" or self.opset >= 18:
            return self.add(op, [x, self.const([axis])], op, keepdims=keepdims)
        return self.add(op, [x], op, axes=[axis], keepdims=keepdims)


def _shared_pooling(g: _GraphBuilder, hidden: str, needed: set) -> Dict[str, str]:
    """Token vectors (the listener's mean over each token's wordpieces) and the reductions asked for."""
    tokens = g.add("MatMul", [TOKEN_WEIGHTS, hidden], "token_vectors")  # (batch, tokens, width)
    pooled = {}
    if "first" in needed:
        pooled["first"] = g.add("Gather", [tokens, g.const(0)], "first", axis=1)
    if "last" in needed:  # the last real token: the mask minus the mask shifted left is 1 exactly there
        tail = g.add("Slice", [TOKEN_MASK, g.const([1]), g.const([2**62]), g.const([1])], "tail")
        shifted = g.add("Pad", [tail, g.const([0, 0, 0, 1])], "shifted")
        last_hot = g.add("Unsqueeze", [g.add("Sub", [TOKEN_MASK, shifted], "last_hot"), g.const([2])], "last_hot3")
        pooled["last"] = g.reduce("ReduceSum", g.add("Mul", [tokens, last_hot], "last_only"), 1)
    if "max" in needed:
        is_token = g.add("Cast", [g.add("Unsqueeze", [TOKEN_MASK, g.const([2])], "mask3")], "is_token", to=9)
        lowest = g.const([numpy.finfo("float32").min], "float32")
        pooled["max"] = g.reduce("ReduceMax", g.add("Where", [is_token, tokens, lowest], "masked"), 1)
    if "mean" in needed:
        count = g.add("Max", [g.reduce("ReduceSum", TOKEN_MASK, 1, keepdims=1), g.const([1.0], "float32")], "count")
        pooled["mean"] = g.add("Div", [g.reduce("ReduceSum", tokens, 1), count], "mean")
    return pooled


def _head_nodes(g: _GraphBuilder, pooled: Dict[str, str], spec: HeadSpec, out: str, inits: list, numpy_helper):
    from onnx import helper

    parts = [pooled[r] for r in spec.reductions]
    features = parts[0] if len(parts) == 1 else g.add("Concat", parts, "features", axis=-1)
    W, b = g.name(f"{spec.component}_W"), g.name(f"{spec.component}_b")
    inits.extend([numpy_helper.from_array(spec.W, W), numpy_helper.from_array(spec.b, b)])
    logits = g.add("Gemm", [features, W, b], "logits", transB=1)
    if spec.activation == "softmax":
        if spec.temperature != 1.0:
            logits = g.add("Div", [logits, g.const([spec.temperature], "float32")], "tempered")
        g.nodes.append(helper.make_node("Softmax", [logits], [out], name=out, axis=-1))
    elif spec.activation == "sigmoid":
        g.nodes.append(helper.make_node("Sigmoid", [logits], [out], name=out))
    else:
        g.nodes.append(helper.make_node("Identity", [logits], [out], name=out))


def head_parity(nlp, texts: List[str], components: List[str]) -> Dict[str, Dict]:
    """Per head in the graph: on how many sample docs the graph scored it, and the largest
    difference to the same head run in Python on the same hidden states."""
    trf = next(proc for _, proc in nlp.pipeline if hasattr(proc, "listener_map"))
    docs = list(trf.pipe(nlp.make_doc(t) for t in texts))
    result = {}
    for component in components:
        wrapper = nlp.get_pipe(component).model
        in_graph = [doc for doc in docs if component in doc._.trf_data.head_scores]
        graph = wrapper.predict(in_graph) if in_graph else numpy.zeros((0, 0))
        python = wrapper.layers[0].predict(in_graph) if in_graph else numpy.zeros((0, 0))
        diff = float(numpy.abs(numpy.asarray(graph) - numpy.asarray(python)).max(initial=0.0))
        result[component] = {"n_docs": len(docs), "scored_in_graph": len(in_graph), "max_abs_diff": diff}
    return result
