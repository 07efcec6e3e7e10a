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

from spacy_bertprod.compress.pipeline import REPORT_FILE

from conftest import kept_project_locks

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data"
MODELS = ["teacher", "control-s0", "distilled-s0"]
STAGES = [f"{m}-{f}" for m in MODELS for f in ("torch", "onnx-fp32", "onnx-int8")]
# the `frontier` workflow (smoke: --vars.frontier_layers 2:0.5): the shipped int8 student with a trimmed
# vocabulary, a 2-layer student with half of each layer's feed-forward units removed
FRONTIER = ["distilled-s0-onnx-int8-trim"] + [
    f"frontier2-pruneffn50-s0-onnx-{f}" for f in ("fp32", "int8", "int8-trim")
]


@pytest.fixture(scope="module")
def smoke_run():
    if not (MIRROR / "SOURCES.tsv").exists():
        pytest.skip(f"the data mirror {MIRROR} is not here")
    with kept_project_locks(REPO):
        result = subprocess.run(
            [sys.executable, "-m", "spacy", "project", "run", "smoke", str(REPO)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return REPO


@pytest.mark.slow
@pytest.mark.parametrize("task,key", [("ner", "ents_f"), ("textcat", "cats_micro_f")])
def test_smoke_metrics_hold_real_scores(smoke_run, task, key):
    metrics = smoke_run / "metrics" / "smoke" / task
    for split in ("dev", "test"):
        for stage in STAGES + FRONTIER:
            scores = json.loads((metrics / split / f"{stage}.json").read_text())
            assert isinstance(scores[key], float) and 0.0 <= scores[key] <= 1.0
            assert scores["speed"] > 0
    bench = json.loads((metrics / "benchmark.json").read_text())
    assert len(bench["results"]) == len(
        STAGES
    )  # the frontier is benchmarked by its own workflow, next to the shipped student
    frontier = json.loads((metrics / "benchmark-frontier.json").read_text())
    assert [Path(r["pipeline"]).name for r in frontier["results"]] == ["distilled-s0-onnx-int8"] + FRONTIER
    frontier_dir = smoke_run / "training" / "smoke" / task / "frontier"
    trimmed = json.loads((frontier_dir / "frontier2-pruneffn50-s0-onnx-int8-trim" / REPORT_FILE).read_text())
    assert 0 < trimmed["vocabulary"]["kept"] < trimmed["vocabulary"]["original_size"]
    int8 = json.loads((frontier_dir / "frontier2-pruneffn50-s0-onnx-int8" / REPORT_FILE).read_text())
    assert int8["transformer"]["layers"] == 2
    teacher_config = json.loads((smoke_run / "assets" / "smoke-encoder" / "config.json").read_text())
    student_config = json.loads((frontier_dir / "frontier2-pruneffn50-init" / "config.json").read_text())
    assert student_config["intermediate_size"] == teacher_config["intermediate_size"] // 2
    assert all(r["words_per_s"]["median"] > 0 for r in bench["results"] + frontier["results"])
    wheel = json.loads((metrics / "wheel.json").read_text())
    student_int8 = json.loads((metrics / "test" / "distilled-s0-onnx-int8.json").read_text())
    assert wheel[key] == pytest.approx(student_int8[key], abs=1e-6), (
        "the installed wheel scores like its pipeline folder"
    )
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
    report = (smoke_run / "reports" / "smoke" / "README.md").read_text()
    assert "## ner" in report and "## textcat" in report and "missing" not in report
    assert "Same text, same answer" in report and "spacy debug data" in report
    assert "| distilled | ONNX int8 | 0,1 |" in report  # two seeds of the NER students, averaged
    assert "| teacher (smoke-encoder) |" in report  # named after the encoder it was fine-tuned from
    assert "| 2-layer student, 50% of FFN units pruned, distilled, seed 0 | ONNX int8 |" in report
    assert (smoke_run / "reports" / "smoke" / "accuracy_vs_speed.png").stat().st_size > 1000
    wheels = list((smoke_run / "packages" / "smoke").rglob("*.whl"))
    assert {w.name.split("-")[0] for w in wheels} == {"en_bertprod_ner", "en_bertprod_textcat"}


SEED_PROJECT = """
vars:
  seed: 0
commands:
""" + "".join(
    f"""- name: ner-{command}
  script:
  - python -c "open('ran.log', 'a').write('{command} ${{vars.seed}}\\\\n')"
  - python -c "open('out-{command}-${{vars.seed}}', 'w').write('x')"
  outputs:
  - out-{command}-${{vars.seed}}
"""
    for command in ("control", "distill", "seed-evaluate")
)


def test_seed_study_reruns_nothing_that_has_not_changed(tmp_path):
    """spaCy's project.lock has one entry per command name; run_seeds keeps one per seed."""
    (tmp_path / "project.yml").write_text(SEED_PROJECT, encoding="utf8")
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, str(REPO / "scripts" / "run_seeds.py"), *args], cwd=tmp_path, capture_output=True, text=True
    )
    main = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "ner-control", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert main.returncode == 0, main.stderr
    for attempt in range(2):
        result = run("--seeds", "1,2", "--tasks", "ner")
        assert result.returncode == 0, result.stdout + result.stderr
    ran = (tmp_path / "ran.log").read_text().split("\n")
    expected = ["control 0"] + [f"{c} {s}" for s in (1, 2) for c in ("control", "distill", "seed-evaluate")]
    assert [line for line in ran if line] == expected  # the second study ran nothing again
    # seed 0's entry (the task workflow's) is back, so that workflow does not re-run either
    again = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "ner-control", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "Skipping" in again.stdout and (tmp_path / "ran.log").read_text().count("control 0") == 1
    (tmp_path / "out-distill-1").unlink()  # a lost output of seed 1: only that command runs again
    assert run("--seeds", "1,2", "--tasks", "ner").returncode == 0
    assert (tmp_path / "ran.log").read_text().count("distill 1") == 2


@pytest.mark.parametrize(
    "layers,message",
    [
        ("4,x", "--layers takes comma-separated layer counts"),
        ("3:half", "depth:share for a narrower student"),
        ("3:1", "must be above 0 and below 1"),
        ("3:0", "must be above 0 and below 1"),
        ("0", "at least one positive layer count"),
        ("2", "is missing; run the `ner` workflow first"),
        ("3:0.5,2", "is missing; run the `ner` workflow first"),
    ],
)
def test_frontier_refuses_bad_depths_and_a_missing_workflow(tmp_path, layers, message):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "frontier.py"),
            "ner",
            "--run",
            "nowhere",
            "--steps",
            "1",
            "--layers",
            layers,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.parametrize(
    "model_type,built", [("bert", ["frontier3-pruneffn50", "frontier2"]), ("deberta-v2", ["frontier2"])]
)
def test_frontier_skips_narrower_students_a_family_cannot_take_and_says_so(tmp_path, capsys, model_type, built):
    sys.path.insert(0, str(REPO / "scripts"))
    import frontier

    teacher = tmp_path / "teacher" / "model-best"
    (teacher / "transformer").mkdir(parents=True)
    (teacher / "transformer" / "config.json").write_text(json.dumps({"model_type": model_type}))
    record = tmp_path / "metrics" / "frontier-skipped.json"
    students = frontier.drop_unbuildable(frontier.parse_layers("3:0.5,2"), teacher, record)
    assert [s.name for s in students] == built
    if model_type == "bert":
        assert not record.exists()
    else:  # named on stderr and recorded for the report, with the family's reason
        assert "not building frontier3-pruneffn50" in capsys.readouterr().err
        skipped = json.loads(record.read_text())
        assert skipped["skipped"] == ["frontier3-pruneffn50"] and "DeBERTa" in skipped["reason"]
