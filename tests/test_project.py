"""The spaCy project's `smoke` workflow: every command of `all` and `seeds` on a small slice, end to end.

Runs `python -m spacy project run smoke` in the repository (outputs under */smoke/), then checks
what it produced: real scores in every metrics file, dev and test, two seeds of the students, a
report, and wheels that loaded in a fresh torch-free virtualenv. Needs the data mirror at
../shared/data (as on the dev machines and CI).
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data"
MODELS = ["teacher", "control-s0", "distilled-s0"]
STAGES = [f"{m}-{f}" for m in MODELS for f in ("torch", "onnx-fp32", "onnx-int8")] + ["frontier-s0-onnx-int8"]


@pytest.fixture(scope="module")
def smoke_run():
    if not (MIRROR / "SOURCES.tsv").exists():
        pytest.skip(f"the data mirror {MIRROR} is not here")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "smoke", str(REPO)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return REPO


@pytest.mark.slow
@pytest.mark.parametrize("task,key", [("ner", "ents_f"), ("textcat", "cats_micro_f")])
def test_smoke_metrics_hold_real_scores(smoke_run, task, key):
    metrics = smoke_run / "metrics" / "smoke" / task
    for split in ("dev", "test"):
        for stage in STAGES:
            scores = json.loads((metrics / split / f"{stage}.json").read_text())
            assert isinstance(scores[key], float) and 0.0 <= scores[key] <= 1.0
            assert scores["speed"] > 0
    bench = json.loads((metrics / "benchmark.json").read_text())
    assert len(bench["results"]) == len(STAGES)
    assert all(r["words_per_s"]["median"] > 0 for r in bench["results"])
    wheel = json.loads((metrics / "wheel.json").read_text())
    student_int8 = json.loads((metrics / "test" / "distilled-s0-onnx-int8.json").read_text())
    assert wheel[key] == pytest.approx(student_int8[key], abs=1e-6), "the installed wheel scores like its pipeline folder"
    invariance = json.loads((metrics / "invariance-distilled-s0-onnx-int8.json").read_text())
    assert invariance["identical_all"] == 1.0, invariance  # same text, same answer, whatever the batch
    transfer = json.loads((metrics / "transfer.json").read_text())
    labelled = json.loads((metrics / "teacher-label.json").read_text())
    assert transfer["variants"] > transfer["train_docs"]  # augment_n=2: up to two variants per doc
    assert labelled["docs"] == transfer["train_docs"] + transfer["transfer_docs"]
    assert "checks passed" in (metrics / "debug-data.txt").read_text()


@pytest.mark.slow
def test_smoke_seed_study_adds_seed_1(smoke_run):
    metrics = smoke_run / "metrics" / "smoke" / "ner"
    for model in ("control", "distilled"):
        for split in ("dev", "test"):
            assert 0.0 <= json.loads((metrics / split / f"{model}-s1-onnx-int8.json").read_text())["ents_f"] <= 1.0


@pytest.mark.slow
def test_smoke_report_and_wheels(smoke_run):
    report = (smoke_run / "reports" / "smoke" / "report.md").read_text()
    assert "## ner" in report and "## textcat" in report and "missing" not in report
    assert "Same text, same answer" in report and "spacy debug data" in report
    assert "| distilled | ONNX int8 | 0,1 |" in report  # two seeds of the NER students, averaged
    assert (smoke_run / "reports" / "smoke" / "accuracy_vs_speed.png").stat().st_size > 1000
    wheels = list((smoke_run / "packages" / "smoke").rglob("*.whl"))
    assert {w.name.split("-")[0] for w in wheels} == {"en_bertprod_ner", "en_bertprod_textcat"}
