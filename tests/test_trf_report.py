"""The trf report's checks are computed from the evaluate files as the done-when states them: int8 within
0.5 points of torch, the distilled int8 students' mean over seeds against the teacher's share and the
control, and the fastest distilled student against spaCy's CNN words/s."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import trf_report  # noqa: E402

KEYS = [key for key, _ in trf_report.METRICS]


def write_scores(folder: Path, name: str, points: float, **override) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    values = {key: points / 100 for key in KEYS}
    values.update({key: value / 100 for key, value in override.items()})
    (folder / f"{name}.json").write_text(json.dumps(values))


def bench(folder: Path, speeds: dict) -> None:
    rows = [
        {"pipeline": name, "words_per_s": {"median": wps}, "size_on_disk_bytes": 1e6, "peak_rss_mb": 1.0}
        for name, wps in speeds.items()
    ]
    (folder / "benchmark.json").write_text(json.dumps({"results": rows}))


def test_checks_follow_the_evaluate_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test = tmp_path / "metrics" / "r" / "trf" / "test"
    write_scores(test, "teacher-torch", 90.0)
    write_scores(test, "teacher-onnx-int8", 89.8, dep_las=89.3)  # LAS drops 0.7 points
    for seed, points in ((0, 89.0), (1, 88.6)):
        write_scores(test, f"distilled-s{seed}-onnx-int8", points, ents_f=80.0)
        write_scores(test, f"control-s{seed}-onnx-int8", points - 2)
    bench(test.parent, {"training/r/trf/teacher/model-best": 100.0, "training/r/trf/distilled-s0-onnx-int8": 900.0,
                        "training/r/trf/cnn/model-best": 1000.0})  # fmt: skip
    text = "\n".join(trf_report.trf_section("r"))
    assert "within 0.5 points of torch on every test metric: **no** (largest drop LAS -0.70" in text
    assert "TAG: distilled int8 keeps **98.7%** of the teacher (target 98%: met); above the control" in text
    assert "88.80 ± 0.28" in text and "(2 seeds)" in text
    assert "ENTS F: distilled int8 keeps **88.9%** of the teacher (target 95%: not met); not above" in text
    assert "at ≥ spaCy CNN words/s: **no** (900 vs 1,000 words/s, 0.90×)" in text
    assert "missing corpus/r/trf/data.json" in text and "missing wheel.json" in text
