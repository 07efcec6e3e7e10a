"""The project on data it has never seen: a tiny multi-label JSONL dataset (neither WNUT-17 nor
Banking77), written here, through the whole `textcat` workflow to an installed wheel and a report,
with no file edited — only vars. (CoNLL NER and CSV intents go through the same `bertprod data`
command, tested format by format in test_corpora.py.)"""
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN = "test-own-multilabel"
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


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("own")
    for name, n, seed in (("train", 90, 0), ("test", 30, 1)):
        (data / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in tickets(n, seed)), encoding="utf8")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "textcat", str(REPO), "--vars.run", RUN,
           "--vars.textcat_train", str(data / "train.jsonl"), "--vars.textcat_dev", "", "--vars.textcat_test", str(data / "test.jsonl"),
           "--vars.textcat_multilabel", "true", "--vars.textcat_package", "support_topics", "--vars.title", "Support tickets",
           "--vars.textcat_steps", "8", "--vars.textcat_student_steps", "6", "--vars.eval_frequency", "4", "--vars.augment_n", "2",
           "--vars.bench_repeats", "1", "--vars.latency_docs", "10"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    yield result
    for top in ("corpus", "training", "metrics", "packages", "reports"):
        shutil.rmtree(REPO / top / RUN, ignore_errors=True)


@pytest.mark.slow
def test_multilabel_jsonl_goes_through_to_a_wheel_and_a_report(own_run):
    assert own_run.returncode == 0, own_run.stdout[-6000:] + own_run.stderr[-3000:]
    data = json.loads((REPO / "corpus" / RUN / "textcat" / "data.json").read_text())
    assert data["task"] == "textcat_multilabel" and data["labels"] == sorted(TOPICS) and "dev_carved" in data
    config = (REPO / "corpus" / RUN / "textcat" / "config.cfg").read_text()
    assert 'factory = "bertprod_soft_textcat_multilabel"' in config
    wheel = json.loads((REPO / "metrics" / RUN / "textcat" / "wheel.json").read_text())
    assert 0.0 <= wheel["cats_macro_f"] <= 1.0 and wheel["wheel"].startswith("en_support_topics-")
    report = (REPO / "reports" / RUN / "report.md").read_text()
    assert "Support tickets" in report and "macro F (multi-label)" in report and "## ner" not in report
