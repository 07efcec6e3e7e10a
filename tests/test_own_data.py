"""The project on data it has never seen (neither WNUT-17 nor Banking77), written here: a CoNLL
NER dataset and a multi-label JSONL dataset, through the whole `all` workflow to installed wheels
and a report, with no file edited — only vars. (CSV intents go through the same `bertprod data`
command: Banking77 in the smoke run, and test_corpora.py format by format.)"""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import kept_project_locks

REPO = Path(__file__).resolve().parents[1]
RUN = "test-own-data"
TOPICS = {
    "billing": ["invoice", "charged twice", "refund", "payment failed", "bill"],
    "delivery": ["parcel", "courier", "late delivery", "tracking number", "package"],
    "account": ["password", "login", "two factor", "username", "locked out"],
}


def tickets(n: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = rng.sample(sorted(TOPICS), k=rng.choice([1, 1, 2]))
        phrases = [rng.choice(TOPICS[label]) for label in labels]
        rows.append({"text": f"hi, my {' and my '.join(phrases)} issue needs help", "labels": labels})
    return rows


PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Linus"]
SHIPS = ["Endeavour", "Beagle", "Nautilus"]


def sailing_conll(n: int, seed: int) -> str:
    """Token-per-line IOB2 with -DOCSTART-, tab separated; every 7th sentence has I- after O (IOB1 style)."""
    rng = random.Random(seed)
    lines = ["-DOCSTART-\tO", ""]
    for i in range(n):
        person, ship = rng.choice(PEOPLE).split(), rng.choice(SHIPS)
        tokens = [(w, ("B-" if j == 0 else "I-") + "PER") for j, w in enumerate(person)]
        tokens += [
            ("sailed", "O"),
            ("on", "O"),
            ("the", "O"),
            (ship, ("I-" if i % 7 == 0 else "B-") + "SHIP"),
            ("today", "O"),
        ]
        lines += [f"{w}\t{t}" for w, t in tokens] + [""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("own")
    for name, n, seed in (("train", 90, 0), ("test", 30, 1)):
        (data / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in tickets(n, seed)), encoding="utf8")
        (data / f"{name}.conll").write_text(sailing_conll(n, seed), encoding="utf8")
    # Your own encoder goes in through vars too: a small random BERT (MiniLM's tokenizer) keeps this quick.
    encoder = data / "encoder"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "tiny_encoder.py"), str(encoder)], check=True, capture_output=True
    )
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "project",
        "run",
        "all",
        str(REPO),
        "--vars.run",
        RUN,
        "--vars.teacher_model",
        str(encoder),
        "--vars.ner_train",
        str(data / "train.conll"),
        "--vars.ner_dev",
        "",
        "--vars.ner_test",
        str(data / "test.conll"),
        "--vars.textcat_train",
        str(data / "train.jsonl"),
        "--vars.textcat_dev",
        "",
        "--vars.textcat_test",
        str(data / "test.jsonl"),
        "--vars.textcat_multilabel",
        "true",
        "--vars.ner_package",
        "sailors",
        "--vars.textcat_package",
        "support_topics",
        "--vars.title",
        "Sailors and support tickets",
        "--vars.ner_steps",
        "8",
        "--vars.textcat_steps",
        "8",
        "--vars.ner_student_steps",
        "6",
        "--vars.textcat_student_steps",
        "6",
        "--vars.ner_distill_steps",
        "6",
        "--vars.textcat_distill_steps",
        "6",
        "--vars.eval_frequency",
        "4",
        "--vars.augment_n",
        "2",
        "--vars.bench_repeats",
        "1",
        "--vars.latency_docs",
        "10",
        "--vars.frontier_layers",
        "2",
    ]
    with kept_project_locks(REPO):
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    yield result
    for top in ("corpus", "training", "metrics", "packages", "reports"):
        shutil.rmtree(REPO / top / RUN, ignore_errors=True)


@pytest.mark.slow
def test_conll_ner_goes_through_to_a_wheel(own_run):
    assert own_run.returncode == 0, own_run.stdout[-6000:] + own_run.stderr[-3000:]
    data = json.loads((REPO / "corpus" / RUN / "ner" / "data.json").read_text())
    assert data["labels"] == ["PER", "SHIP"] and "dev_carved" in data
    assert (
        sum(data["files"]["train"]["repaired"].values()) == 13
    )  # sentences 0, 7, ..., 84: I- after O, repaired and counted
    wheel = json.loads((REPO / "metrics" / RUN / "ner" / "wheel.json").read_text())
    assert 0.0 <= wheel["ents_f"] <= 1.0 and wheel["wheel"].startswith("en_sailors-")


@pytest.mark.slow
def test_multilabel_jsonl_goes_through_to_a_wheel_and_a_report(own_run):
    assert own_run.returncode == 0, own_run.stdout[-6000:] + own_run.stderr[-3000:]
    data = json.loads((REPO / "corpus" / RUN / "textcat" / "data.json").read_text())
    assert data["task"] == "textcat_multilabel" and data["labels"] == sorted(TOPICS) and "dev_carved" in data
    config = (REPO / "corpus" / RUN / "textcat" / "config.cfg").read_text()
    assert 'factory = "bertprod_soft_textcat_multilabel"' in config
    wheel = json.loads((REPO / "metrics" / RUN / "textcat" / "wheel.json").read_text())
    assert 0.0 <= wheel["cats_macro_f"] <= 1.0 and wheel["wheel"].startswith("en_support_topics-")
    report = (REPO / "reports" / RUN / "README.md").read_text()
    assert (
        "Sailors and support tickets" in report and "macro F (multi-label)" in report and "## ner: entity F1" in report
    )
    assert "I- tag without a B- before it" in report
