"""int8 quantisation with onnxruntime.quantization: weights S8, activations U8.

Two ways to pick activation scales:
- "calibrated" (default): measured once on sample text (see calibrate.py). A text's output
  depends only on that text, never on its batch-mates or the padding.
- "dynamic": ONNX Runtime's `quantize_dynamic` as is, one scale per batch tensor at run time.
  Outputs move slightly with the rest of the batch; kept for comparison and for users who
  cannot supply sample text.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from ..backends import EncoderBatch

ACTIVATION_SCALES = ("calibrated", "dynamic")
# The smoothing strength the min/max fallback tries last: on all-mpnet-base-v2 (sentence vectors'
# cosine to fp32, min/max ranges) 0.7: 0.991, 0.8: 0.995, 0.9: 0.992, 1.0: 0.987, where
# SmoothQuant found 0.75-0.85 best for most models.
FALLBACK_SMOOTH_ALPHA = 0.8


@dataclass
class QuantizeSettings:
    # Defaults measured on MiniLM-L6 / WNUT-17 (see README): per-channel weights kept entity F1
    # within 0.2 points of fp32 where per-tensor lost 1.2; int8 embeddings cost nothing
    # measurable and take the model from 65% to 25% of its fp32 size.
    per_channel: bool = True
    reduce_range: bool = False
    nodes_to_exclude: List[str] = field(default_factory=list)
    quantize_embeddings: bool = True
    activation_scales: str = "calibrated"
    # Activation ranges keep this central share of the calibration values (see README table).
    calibration_percentile: float = 99.99
    # When the percentile ranges change more of the sample's predictions than the agreement check
    # allows, calibrate again with min/max ranges, and with smoothed activations and min/max
    # ranges, and keep whichever changes fewest: 12-layer base encoders have outlier activations
    # that clipping destroys (Bondarenko et al. 2021) and that smoothing tames (smooth.py).
    min_max_fallback: bool = True
    # SmoothQuant's migration strength: 0 = no smoothing (unless the fallback picks it), else in
    # (0, 1]; the fallback uses FALLBACK_SMOOTH_ALPHA.
    smooth_alpha: float = 0.0

    def __post_init__(self):
        if self.activation_scales not in ACTIVATION_SCALES:
            raise ValueError(f"activation scales must be one of {ACTIVATION_SCALES}, not '{self.activation_scales}'.")
        if not 0.0 <= self.smooth_alpha <= 1.0:
            raise ValueError(f"--smooth-alpha must be in [0, 1] (0: off), got {self.smooth_alpha}.")
        if not 50.0 < self.calibration_percentile <= 100.0:
            raise ValueError(
                f"The calibration percentile must be in (50, 100] (100 = min/max), got {self.calibration_percentile}."
            )

    def op_types(self) -> List[str]:
        ops = ["MatMul", "Attention"]
        if self.quantize_embeddings:
            ops += ["Gather", "EmbedLayerNormalization"]
        return ops

    def to_dict(self) -> Dict:
        return {
            **asdict(self),
            "op_types": self.op_types(),
            "weight_type": "QInt8",
            "batch_invariant": self.activation_scales == "calibrated",
        }


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
            raise ValueError("Smoothing activations needs sample batches to measure them.")
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
        raise ValueError("Calibrated int8 needs sample batches to measure activation ranges.")
    from .calibrate import calibrate_int8

    try:
        return {**calibrate_int8(dynamic, dst, calibration, settings.calibration_percentile), **smoothing}
    finally:
        Path(dynamic).unlink(missing_ok=True)
