"""Activation smoothing before int8 (SmoothQuant, Xiao et al. 2023), for encoders with outlier channels.

Base-size encoders carry a few activation channels far larger than the rest (12-layer MPNet's
LayerNorm and GELU outputs: the largest value 10-40x the 99.9th percentile). One int8 scale per
tensor then spends its 256 levels on those channels and rounds the others away; clipping them
(percentiles) breaks the model instead. Smoothing divides each input channel j of a MatMul by
s_j = max|X_j|^alpha / max|W_j|^(1-alpha) and multiplies row j of its weight by s_j: the product
is unchanged (exact up to float rounding), the activation's channels become comparable, and the
weights, quantised per output channel, absorb the difference. `X / s` is one elementwise Mul per
smoothed tensor, shared by every MatMul reading it (Q, K and V read one LayerNorm output).

Only MatMuls whose second input is a weight (an initializer used by that node alone) are
smoothed; fused Attention nodes and activation x activation MatMuls are left as they are.
"""

from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy

from ..backends import EncoderBatch
from ..errors import InvalidInput

# s_j is kept within these bounds so that no channel is scaled into float32 trouble.
SCALE_BOUNDS = (1e-2, 1e3)


def smoothable(graph, excluded: Sequence[str] = ()) -> Dict[str, List]:
    """Activation tensor -> the MatMul nodes that read it with a weight of their own."""
    initializers = {i.name for i in graph.initializer}
    uses: Dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    found: Dict[str, List] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.name in excluded or len(node.input) != 2:
            continue
        activation, weight = node.input
        if weight in initializers and activation not in initializers and uses[weight] == 1:
            found.setdefault(activation, []).append(node)
    return found


def channel_maxima(model, names: List[str], batches: Iterable[EncoderBatch]) -> Dict[str, numpy.ndarray]:
    """max |x| per channel (last axis) of each tensor, over the real (non-pad) positions."""
    import onnx

    from ..backends.onnx import OnnxSession

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = OnnxSession(["CPUExecutionProvider"], 0, 1)
    session.set_model(probe.SerializeToString(), source="the fp32 graph being smoothed")
    maxima: Dict[str, numpy.ndarray] = {}
    for batch in batches:
        real = batch.attention_mask.astype(bool)
        for name, value in zip(names, session.run_outputs(batch, names)):
            rows = value[real] if value.shape[:2] == real.shape else value.reshape(-1, value.shape[-1])
            peak = numpy.abs(rows).max(axis=0)
            maxima[name] = peak if name not in maxima else numpy.maximum(maxima[name], peak)
    if not maxima:
        raise InvalidInput("No calibration text to smooth activations on: pass --sample with in-domain texts.")
    return maxima


def smooth_activations(
    src: Path, dst: Path, batches: Iterable[EncoderBatch], alpha: float, excluded: Sequence[str] = ()
) -> Dict:
    """Write the smoothed fp32 graph of `src` to `dst`; returns what was smoothed."""
    import onnx
    from onnx import numpy_helper

    if not 0.0 < alpha <= 1.0:
        raise InvalidInput(f"--smooth-alpha must be in (0, 1], not {alpha}.")
    model = onnx.load(str(src))
    graph = model.graph
    targets = smoothable(graph, excluded)
    maxima = channel_maxima(model, list(targets), batches)
    weights = {i.name: i for i in graph.initializer}
    inserted = []
    for name, nodes in targets.items():
        arrays = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        weight_max = numpy.max([numpy.abs(w).max(axis=1) for w in arrays], axis=0)
        scale = numpy.maximum(maxima[name], 1e-5) ** alpha / numpy.maximum(weight_max, 1e-5) ** (1.0 - alpha)
        scale = numpy.clip(scale, *SCALE_BOUNDS).astype("float32")
        for node, array in zip(nodes, arrays):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(array * scale[:, None], node.input[1]))
            node.input[0] = name + "_smoothed"
        graph.initializer.append(numpy_helper.from_array(1.0 / scale, name + "_smooth_inverse"))
        inserted.append(
            onnx.helper.make_node("Mul", [name, name + "_smooth_inverse"], [name + "_smoothed"], name=name + "_smooth")
        )
    _insert_after_producers(graph, inserted)
    onnx.save(model, str(dst))
    return {"smooth_alpha": alpha, "smoothed_tensors": len(inserted)}


def _insert_after_producers(graph, nodes) -> None:
    """Keep the graph topologically sorted: each new node right after the one making its input."""
    position = {output: i for i, node in enumerate(graph.node) for output in node.output}
    ordered = list(graph.node)
    for node in sorted(nodes, key=lambda n: position.get(n.input[0], -1), reverse=True):
        ordered.insert(position.get(node.input[0], -1) + 1, node)
    del graph.node[:]
    graph.node.extend(ordered)
