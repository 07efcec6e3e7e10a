"""Calibrated (static) activation scales for an int8 graph: the same text, the same answer.

`quantize_dynamic` inserts a `DynamicQuantizeLinear` before every int8 MatMul/Attention: it picks
one activation scale over the whole padded batch, so a text's output moves with its batch-mates
and with the padding (issue: ~10% of WNUT-17 tweets got different entities alone than in a
batch). Here each of those nodes becomes a `QuantizeLinear` with a constant scale and zero point
measured once on sample text, and `MatMulInteger -> Cast -> Mul` becomes one
`MatMulIntegerToFloat`. The integer kernels are the same as the dynamic graph's, so the speed is
too, and every position is quantised independently of what else is in the batch.

Ranges are measured on real (non-pad) positions only, and clipped to a percentile so that a few
outliers in the sample do not waste the 256 levels. (onnxruntime.quantization's calibrators
would see the pad positions too, and they target QDQ graphs, not these DynamicQuantizeLinear
inputs.)
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy

from ..backends import EncoderBatch
from ..errors import InvalidInput

# Values kept per tensor and batch for the percentile estimate; fixed seed: same sample -> same model.
_SAMPLES_PER_BATCH = 50_000
_SEED = 0


@dataclass
class ActivationRange:
    low: float
    high: float
    # Share of calibration values outside [low, high] (clipped by the percentile).
    clipped: float


def measure_ranges(model, batches: Iterable[EncoderBatch], percentile: float) -> Dict[str, ActivationRange]:
    """Run `model` (an onnx.ModelProto with DynamicQuantizeLinear nodes) and measure their inputs."""
    import onnx

    from ..backends.onnx import OnnxSession

    model = onnx.ModelProto.FromString(model.SerializeToString())  # copy: outputs are added below
    names = [node.input[0] for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = OnnxSession(["CPUExecutionProvider"], 0, 1)
    session.set_model(model.SerializeToString(), source="the int8 graph being calibrated")
    rng = numpy.random.default_rng(_SEED)
    lows = {n: numpy.inf for n in names}
    highs = {n: -numpy.inf for n in names}
    samples: Dict[str, List[numpy.ndarray]] = defaultdict(list)
    n_batches = 0
    for batch in batches:
        n_batches += 1
        real = batch.attention_mask.astype(bool)
        for name, value in zip(names, session.run_outputs(batch, names)):
            # (batch, length, width) activations: padded positions must not move a range.
            value = value[real] if value.shape[:2] == real.shape else value
            value = value.ravel()
            lows[name] = min(lows[name], float(value.min()))
            highs[name] = max(highs[name], float(value.max()))
            if percentile < 100.0:
                take = min(value.size, _SAMPLES_PER_BATCH)
                samples[name].append(rng.choice(value, take, replace=False) if take < value.size else value)
    if not n_batches:
        raise InvalidInput("No calibration text: pass --sample with in-domain texts.")
    ranges: Dict[str, ActivationRange] = {}
    for name in names:
        if percentile < 100.0:
            values = numpy.concatenate(samples[name])
            low, high = numpy.percentile(values, [100.0 - percentile, percentile])
            clipped = float(numpy.mean((values < low) | (values > high)))
        else:
            low, high, clipped = lows[name], highs[name], 0.0
        ranges[name] = ActivationRange(float(low), float(high), clipped)
    return ranges


def _scale_zero_point(low: float, high: float) -> Tuple[numpy.float32, numpy.uint8]:
    # DynamicQuantizeLinear's own rule (uint8, range widened to include 0), with fixed bounds.
    low, high = min(0.0, low), max(0.0, high)
    scale = numpy.float32((high - low) / 255.0) if high > low else numpy.float32(1.0)
    zero_point = numpy.uint8(numpy.clip(numpy.round(-low / scale), 0, 255))
    return scale, zero_point


def freeze_activation_scales(model, ranges: Dict[str, ActivationRange]) -> int:
    """Replace each DynamicQuantizeLinear by a QuantizeLinear with constant scale/zero point."""
    from onnx import helper, numpy_helper

    nodes, n_frozen = [], 0
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        source = node.input[0]
        quantized, scale_name, zero_name = node.output
        scale, zero_point = _scale_zero_point(ranges[source].low, ranges[source].high)
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(numpy.array(scale), scale_name),
                numpy_helper.from_array(numpy.array(zero_point), zero_name),
            ]
        )
        nodes.append(
            helper.make_node(
                "QuantizeLinear", [source, scale_name, zero_name], [quantized], name=f"{node.name}_calibrated"
            )
        )
        n_frozen += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return n_frozen


def fuse_matmul_integer_to_float(model) -> int:
    """MatMulInteger -> Cast -> Mul(a_scale * b_scale) => MatMulIntegerToFloat (ORT contrib op).

    ORT fuses this pattern itself only while the activation scale is computed at run time; once
    it is a constant, its constant folding breaks the pattern and leaves three slower nodes.
    Chains that do not look exactly like quantize_dynamic's are left alone (still correct).
    """
    from onnx import helper

    producers = {out: node for node in model.graph.node for out in node.output}
    consumers = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    replaced: Dict[str, object] = {}
    dropped = set()
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) != 4:
            continue
        if len(consumers[node.output[0]]) != 1:
            continue
        (cast,) = consumers[node.output[0]]
        if cast.op_type != "Cast" or len(consumers[cast.output[0]]) != 1:
            continue
        (mul,) = consumers[cast.output[0]]
        if mul.op_type != "Mul" or mul.input[0] != cast.output[0]:
            continue
        scales = producers.get(mul.input[1])
        if scales is None or scales.op_type != "Mul" or len(consumers[scales.output[0]]) != 1:
            continue
        a, b, a_zero, b_zero = node.input
        a_scale, b_scale = scales.input
        replaced[node.name] = helper.make_node(
            "MatMulIntegerToFloat",
            [a, b, a_scale, b_scale, a_zero, b_zero],
            [mul.output[0]],
            name=f"{node.name}_to_float",
            domain="com.microsoft",
        )
        dropped.update({cast.name, mul.name, scales.name})
    nodes = [replaced.get(n.name, n) for n in model.graph.node if n.name not in dropped]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if replaced and not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(replaced)


def calibrate_int8(src: Path, dst: Path, batches: Iterable[EncoderBatch], percentile: float) -> Dict:
    """Turn the dynamic int8 model at `src` into a calibrated, batch-invariant one at `dst`."""
    import onnx

    model = onnx.load(str(src))
    ranges = measure_ranges(model, batches, percentile)
    n_frozen = freeze_activation_scales(model, ranges)
    n_fused = fuse_matmul_integer_to_float(model)
    onnx.save(model, str(dst))
    clipped = [r.clipped for r in ranges.values()]
    return {
        "calibrated_tensors": n_frozen,
        "fused_matmul_integer_to_float": n_fused,
        "percentile": percentile,
        "mean_clipped_share": float(numpy.mean(clipped)) if clipped else 0.0,
    }
