"""`compress`: rewrite a trained transformer pipeline onto ONNX Runtime, heads untouched.

In named stages, each in its own module: check the request, load the pipeline and strip its
training-only components, shrink the encoder (load.py) → export, fuse, quantise and calibrate
(int8.py) → write the ONNX pipeline and check parity (write.py) → report (report.py). Output is
written to a temporary folder next to OUT and renamed into place only when complete, so an
interrupted run never leaves a half-written pipeline that looks valid. Progress goes to the
`spacy_bertprod.compress` logger, results to look at as `Int8Warning`s.
"""

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Dict

from ..errors import Int8Warning, Warnings
from .int8 import build_onnx, min_max_fallback, wants_min_max
from .load import check_output, check_request, load_source, pipeline_folder, shrink
from .report import REPORT_FILE, build_report
from .settings import CompressSettings
from .write import write_and_check

__all__ = ["REPORT_FILE", "CompressSettings", "check_output", "compress_pipeline"]


def compress_pipeline(input_path: Path, output_path: Path, settings: CompressSettings) -> Dict:
    """Compress the pipeline at `input_path` (a folder or an installed package's name) into
    `output_path`; returns the report."""
    input_path, output_path = pipeline_folder(input_path), Path(output_path)
    check_request(input_path, output_path, settings)
    timings: Dict[str, float] = {}
    loaded = load_source(input_path, settings, timings)
    shrunk = shrink(loaded, settings, timings)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".compress-", dir=output_path.parent))
    try:
        graphs = build_onnx(loaded, shrunk, settings, work, timings)
        out, parity = write_and_check(loaded, shrunk, graphs, settings, work / "pipeline", timings)
        if wants_min_max(settings, parity):
            graphs, out, parity, settings = min_max_fallback(loaded, shrunk, graphs, settings, out, parity, timings)
        if not parity["agreement_check"]["passed"]:
            message = parity["agreement_check"]["message"]
            warnings.warn(Warnings.W002.format(message=message), Int8Warning, stacklevel=2)
        report = build_report(loaded, shrunk, graphs, settings, parity, out, output_path, timings)
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf8")
        if output_path.exists():  # --force
            shutil.rmtree(output_path)
        out.rename(output_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
