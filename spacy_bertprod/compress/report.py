"""Stage 6 of compress: compress_report.json, and the summary the CLI prints, from one object."""

from pathlib import Path
from typing import Dict

from ..about import __version__
from ..families import family_of
from ..paths import folder_size
from .optimize import fusion_summary
from .steps import Graphs, Loaded, Shrunk

REPORT_FILE = "compress_report.json"
# What `bertprod compress` prints (and writes to --report) of the full report.
SUMMARY_KEYS = (
    "sizes_bytes",
    "fusion_statistics",
    "depth",
    "word_retention",
    "vocabulary",
    "pruning",
    "heads_in_graph",
    "parity",
)


def build_report(
    loaded: Loaded, shrunk: Shrunk, graphs: Graphs, settings, parity: Dict, out: Path, output_path: Path, timings
) -> Dict:
    """compress_report.json: what went in, what was done, sizes, parity and timings."""
    config = shrunk.module.config
    sizes = {
        "input_pipeline": folder_size(loaded.path),
        "onnx_exported": graphs.raw.stat().st_size,
        "onnx_fp32": graphs.fp32.stat().st_size,
        "onnx_final": graphs.final.stat().st_size,
        "output_pipeline": folder_size(out),
    }
    sizes["output_over_input"] = round(sizes["output_pipeline"] / max(sizes["input_pipeline"], 1), 4)
    return {
        "input": str(loaded.path),
        "output": str(output_path),
        "transformer": {
            "component": loaded.source.name,
            "source": loaded.source.kind,
            "model_type": config.model_type,
            "family": family_of(config, "The encoder").label,
            "layers": int(config.num_hidden_layers),
            "width": int(config.hidden_size),
        },
        "settings": {
            "quantize": settings.quantize,
            "optimize": settings.optimize,
            "opset": settings.opset,
            "providers": settings.providers,
            "quantization": settings.quantization.to_dict() if settings.quantize == "int8" else None,
            "calibration": graphs.calibration or None,
        },
        "sample": loaded.sample.to_dict(),
        "fusion_statistics": graphs.fusion,
        "fusion": fusion_summary(config, graphs.fusion) if settings.optimize else None,
        "depth": shrunk.depth,
        "word_retention": shrunk.word_retention,
        "vocabulary": shrunk.vocabulary,
        "pruning": shrunk.pruning,
        "heads_in_graph": graphs.heads,
        "sizes_bytes": sizes,
        "parity": parity,
        "timings_s": timings,
        "bertprod_version": __version__,
    }


def summary(report: Dict) -> Dict:
    """The part of the report the CLI prints."""
    return {key: report[key] for key in SUMMARY_KEYS}
