"""Stage 3 of compress: export with torch.onnx, fuse, quantise and calibrate to int8, and the
min/max fallback that tries other activation ranges when the first int8 graph changes too many
of the sample's predictions."""

import shutil
import warnings
from pathlib import Path
from typing import Dict

from ..errors import Int8Warning, Warnings
from ..transformer_model import encoder_batches
from .optimize import fusion_summary
from .parity import FALLBACK_CHANGED_SHARE
from .settings import CompressSettings
from .steps import Graphs, Loaded, Shrunk, Step, log
from .write import write_and_check


def build_onnx(loaded: Loaded, shrunk: Shrunk, settings: CompressSettings, work: Path, timings) -> Graphs:
    """Export with torch.onnx, fuse with onnxruntime's optimizer, quantise (and calibrate) to int8."""
    from .export import export_onnx
    from .optimize import optimize_onnx

    graphs = Graphs(work / "export.onnx", work / "export.onnx", work / "final.onnx", {}, {})
    with Step("Exporting to ONNX (torch.onnx)", timings):
        export_onnx(shrunk.module, graphs.raw, opset=settings.opset, all_layers=loaded.source.all_layers)
    if settings.optimize:
        graphs.fp32 = work / "fused.onnx"
        with Step("Fusing the graph (onnxruntime.transformers.optimizer)", timings):
            graphs.fusion = optimize_onnx(graphs.raw, graphs.fp32, shrunk.module.config)
        log(f"    fusions: {graphs.fusion or 'none'}; {fusion_summary(shrunk.module.config, graphs.fusion)['note']}")
    if settings.quantize != "int8":
        shutil.copyfile(graphs.fp32, graphs.final)
        return graphs
    label = f"{settings.quantization.activation_scales} activation scales"
    quantize_graph(loaded, shrunk, graphs, settings.quantization, label, timings)
    return graphs


def quantize_graph(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, quantization, label: str, timings) -> None:
    """graphs.fp32 -> graphs.final in int8, activation ranges calibrated on the sample (what
    calibration did goes to graphs.calibration)."""
    from .quantize import quantize_onnx

    with Step(f"Quantising to int8 ({label})", timings):
        batches = encoder_batches(shrunk.tokenizer, [loaded.nlp.make_doc(t)[:] for t in loaded.sample.texts])
        graphs.calibration = quantize_onnx(graphs.fp32, graphs.final, quantization, batches)
    if graphs.calibration:
        graphs.calibration.update(loaded.sample.to_dict())
        _log_calibration(graphs.calibration, len(loaded.sample.texts))


def _log_calibration(calibration: Dict, n_docs: int) -> None:
    if "smoothed_tensors" in calibration:
        log(f"    {calibration['smoothed_tensors']} activations smoothed (alpha {calibration['smooth_alpha']})")
    if "calibrated_tensors" in calibration:
        log(f"    {calibration['calibrated_tensors']} activation ranges calibrated on {n_docs} sample docs")


def wants_min_max(settings: CompressSettings, parity: Dict) -> bool:
    """Try the other int8 graphs when the first changes more than FALLBACK_CHANGED_SHARE of the sample's predictions."""
    q = settings.quantization
    calibrated = settings.quantize == "int8" and q.activation_scales == "calibrated"
    changed = parity["agreement_check"]["changed_share"]
    return calibrated and q.min_max_fallback and q.calibration_percentile < 100 and changed > FALLBACK_CHANGED_SHARE


def min_max_fallback(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, out: Path, parity: Dict, timings):
    """Calibrate again with min/max ranges, and with smoothed activations (smooth.py) and min/max
    ranges; keep the int8 pipeline that changes fewest of the sample's predictions, and stop at one
    that changes none (no later graph can do better on this sample)."""
    import dataclasses

    from .quantize import FALLBACK_SMOOTH_ALPHA

    first = parity["agreement_check"]["changed_share"]
    percentile = settings.quantization.calibration_percentile
    warnings.warn(Warnings.W001.format(percentile=percentile, share=first), Int8Warning, stacklevel=2)
    q = settings.quantization
    candidates = [("min/max", dataclasses.replace(q, calibration_percentile=100.0))]
    if q.smooth_alpha == 0:
        smoothed = dataclasses.replace(q, calibration_percentile=100.0, smooth_alpha=FALLBACK_SMOOTH_ALPHA)
        candidates.append(("smoothed min/max", smoothed))
    best = (graphs, out, parity, settings)
    record = {"percentile_changed_share": first, "kept": "percentile"}
    for label, quantization in candidates:  # the sample decides, not the order, until one changes nothing
        if best[2]["agreement_check"]["changed_share"] == 0:
            record.setdefault("not_tried", []).append(label)
            log(f"    {label} ranges not tried: the kept graph already changes no prediction of the sample")
            continue
        retry = dataclasses.replace(settings, quantization=quantization)
        again, out2, parity2 = _recalibrate(
            loaded, shrunk, graphs, retry, out.parent / label.replace(" ", "-").replace("/", "-"), label, timings
        )
        changed = parity2["agreement_check"]["changed_share"]
        record[label.replace(" ", "_").replace("/", "_") + "_changed_share"] = changed
        keep = changed < best[2]["agreement_check"]["changed_share"]
        log(f"    {label} ranges change {changed:.0%}" + (": keeping them" if keep else ""))
        if keep:
            best = (again, out2, parity2, retry)
            record["kept"] = label
    best[2]["min_max_fallback"] = record
    return best


def _recalibrate(loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, work: Path, label: str, timings):
    """The int8 graph again with other quantisation settings, written and checked in `work`."""
    work.mkdir()
    again = Graphs(graphs.raw, graphs.fp32, work / "final.onnx", graphs.fusion, {}, graphs.heads)
    quantize_graph(loaded, shrunk, again, settings.quantization, f"{label} activation ranges", timings)
    out, parity = write_and_check(loaded, shrunk, again, settings, work / "pipeline", timings)
    return again, out, parity
