"""int8 quantisation with onnxruntime.quantization: weights S8, activations U8.

Two ways to pick activation scales:
- "calibrated" (default): measured once on sample text (see calibrate.py). A text's output
  depends only on that text, never on its batch-mates or the padding.
- "dynamic": ONNX Runtime's `quantize_dynamic` as is, one scale per batch tensor at run time.
  Outputs move slightly with the rest of the batch; kept for comparison and for users who
  cannot supply sample text.
"""

from pathlib import Path
from typing import Dict, Iterable, Optional

from ..backends import EncoderBatch
from ..errors import InvalidInput
from .settings import ACTIVATION_SCALES, QuantizeSettings  # noqa: F401  (imported from here too)

# The smoothing strength the min/max fallback tries last: on all-mpnet-base-v2 (sentence vectors'
# cosine to fp32, min/max ranges) 0.7: 0.991, 0.8: 0.995, 0.9: 0.992, 1.0: 0.987, where
# SmoothQuant found 0.75-0.85 best for most models.
FALLBACK_SMOOTH_ALPHA = 0.8


def quantize_onnx(
    src: Path, dst: Path, settings: QuantizeSettings, calibration: Optional[Iterable[EncoderBatch]] = None
) -> Dict:
    """Quantise `src` into `dst`; returns what calibration did (empty for dynamic scales)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    smoothing: Dict = {}
    if settings.smooth_alpha > 0:
        from .smooth import smooth_activations

        if calibration is None:
            raise InvalidInput("Smoothing activations needs sample batches to measure them.")
        calibration = list(calibration)  # read twice: smoothing, then calibration
        smoothed = Path(dst).with_suffix(".smoothed.onnx")
        smoothing = smooth_activations(src, smoothed, calibration, settings.smooth_alpha, settings.nodes_to_exclude)
        src = smoothed
    dynamic = dst if settings.activation_scales == "dynamic" else Path(dst).with_suffix(".dynamic.onnx")
    quantize_dynamic(
        str(src),
        str(dynamic),
        op_types_to_quantize=settings.op_types(),
        per_channel=settings.per_channel,
        reduce_range=settings.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(settings.nodes_to_exclude),
        # Shape inference on fused graphs can miss types ("Unable to find data type for weight").
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    if smoothing:
        Path(src).unlink(missing_ok=True)
    if settings.activation_scales == "dynamic":
        return smoothing
    if calibration is None:
        raise InvalidInput("Calibrated int8 needs sample batches to measure activation ranges.")
    from .calibrate import calibrate_int8

    try:
        return {**calibrate_int8(dynamic, dst, calibration, settings.calibration_percentile), **smoothing}
    finally:
        Path(dynamic).unlink(missing_ok=True)
