"""`bertprod apply`: a corpus annotated into resumable shards, every document exactly once, the
same output from the local engine and from a Ray actor pool, even when an actor is killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertprod.annotate import ApplyError, apply, read_output
from spacy_bertprod.streaming import iter_docs

from conftest import PEOPLE, PLACES


def write_corpus(path: Path, n: int = 45) -> list:
    records = [
        {"id": i, "text": f"{PEOPLE[i % len(PEOPLE)]} flew to {PLACES[i % len(PLACES)]} on day {i}", "source": "test"}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return records


def test_local_apply_writes_every_record_once_with_its_fields_and_annotations(compressed_bert, tmp_path):
    records = write_corpus(tmp_path / "in.jsonl")
    result = apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "out", shard_size=10)
    assert result["records"] == 45 and result["shards"] == 5 and result["annotated_now"] == 45
    out = list(read_output(tmp_path / "out"))
    assert [r["id"] for r in out] == list(range(45))
    assert all(r["source"] == "test" and r["text"] == records[r["id"]]["text"] for r in out)
    nlp = spacy.load(compressed_bert["int8"])
    for row, doc in zip(out, nlp.pipe(r["text"] for r in records)):
        assert [(e["start"], e["end"], e["label"]) for e in row["ents"]] == [
            (e.start_char, e.end_char, e.label_) for e in doc.ents
        ]
        assert row["cats"] == pytest.approx(doc.cats)


def test_a_rerun_skips_finished_shards_and_redoes_only_the_missing_one(compressed_bert, tmp_path):
    write_corpus(tmp_path / "in.jsonl")
    apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "out", shard_size=10)
    before = (tmp_path / "out" / "part-00002.jsonl").read_bytes()
    (tmp_path / "out" / "part-00002.done.json").unlink()  # as if the worker died before finishing it
    (tmp_path / "out" / "part-00002.jsonl").write_text("half a shard\n")
    again = apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "out", shard_size=10)
    assert again["skipped_shards"] == 4 and again["annotated_now"] == 10
    assert (tmp_path / "out" / "part-00002.jsonl").read_bytes() == before
    assert [r["id"] for r in read_output(tmp_path / "out")] == list(range(45))
    with pytest.raises(ApplyError, match="another job's shards .*shard_size"):
        apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "out", shard_size=7)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ApplyError, match="not written by `bertprod apply`"):
        apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "other")


@pytest.mark.parametrize(
    "lines,fragment",
    [
        (['{"text": "fine"}', '{"text": "fine"}', '{"text": "unclosed'], "in.jsonl:3: not valid JSON"),
        (['{"text": "fine"}', '{"body": "no text"}'], "in.jsonl:2: the text field 'text' is missing"),
        (['{"text": 5}'], "in.jsonl:1: the text field 'text' is a int"),
        (['["a list"]'], "in.jsonl:1: a record must be a JSON object"),
        (['{"text": "x", "ents": []}'], "already has field(s) ['ents']"),
    ],
)
def test_bad_input_is_refused_before_any_work_naming_the_line(compressed_bert, tmp_path, lines, fragment):
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")
    with pytest.raises(ApplyError) as err:
        apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "out")
    assert fragment in str(err.value)
    assert not (tmp_path / "out").exists()


def test_parquet_input_and_spacy_output(compressed_bert, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = write_corpus(tmp_path / "unused.jsonl", n=23)
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "in.parquet", row_group_size=5)
    apply(str(compressed_bert["int8"]), tmp_path / "in.parquet", tmp_path / "out", fmt="spacy", shard_size=10)
    nlp = spacy.load(compressed_bert["int8"])
    docs = [
        d
        for part in sorted((tmp_path / "out").glob("part-*.spacy"))
        for d in DocBin().from_disk(part).get_docs(nlp.vocab)
    ]
    assert [d.text for d in docs] == [r["text"] for r in records]
    assert [d.user_data["fields"]["id"] for d in docs] == list(range(23))
    assert [[e.text for e in d.ents] for d in docs] == [
        [e.text for e in d.ents] for d in nlp.pipe(r["text"] for r in records)
    ]
    pq.write_table(pa.Table.from_pylist([{"body": "x"}]), tmp_path / "bad.parquet")
    with pytest.raises(ApplyError, match="no column 'text'"):
        apply(str(compressed_bert["int8"]), tmp_path / "bad.parquet", tmp_path / "out2")


RAY_ENV = {**os.environ, "RAY_ADDRESS": "", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}


def run_killing_a_worker(command: list, shards: Path) -> int:
    """Run a Ray job (a local 2-worker cluster) and SIGKILL the worker that finishes the first
    shard; the job must still succeed. Returns the killed pid."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=RAY_ENV)
    killed, deadline = None, time.time() + 240
    while killed is None and time.time() < deadline and proc.poll() is None:
        done = list(shards.glob("part-*.done.json")) if shards.exists() else []
        if done:
            killed = json.loads(done[0].read_text())["pid"]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    assert killed is not None, "no shard finished before the job ended"
    return killed


@pytest.mark.slow
def test_ray_engine_matches_local_and_survives_a_killed_actor(compressed_bert, tmp_path):
    pytest.importorskip("ray")
    records = write_corpus(tmp_path / "in.jsonl", n=400)
    apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "local", shard_size=10)
    out = tmp_path / "ray"
    command = [
        sys.executable,
        "-m",
        "spacy",
        "bertprod",
        "apply",
        str(compressed_bert["int8"]),
        str(tmp_path / "in.jsonl"),
        str(out),
        "--engine",
        "ray",
        "--workers",
        "2",
        "--shard-size",
        "10",
    ]
    killed = run_killing_a_worker(command, out)
    rows = list(read_output(out))
    assert [r["id"] for r in rows] == list(range(len(records)))  # every document exactly once, in order
    for part in sorted((tmp_path / "local").glob("part-*.jsonl")):
        assert (out / part.name).read_bytes() == part.read_bytes()
    pids = {json.loads(p.read_text())["pid"] for p in out.glob("part-*.done.json")}
    remaining = len(list(out.glob("part-*.done.json")))
    assert remaining == 40
    assert pids - {killed}, "shards were written after the kill by other actors"


def test_local_workers_write_the_same_shards_as_one_process(compressed_bert, tmp_path):
    write_corpus(tmp_path / "in.jsonl", n=60)
    one = apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "one", shard_size=10)
    two = apply(str(compressed_bert["int8"]), tmp_path / "in.jsonl", tmp_path / "two", shard_size=10, workers=2)
    assert one["annotated_now"] == two["annotated_now"] == 60 and two["threads_per_worker"] >= 1
    for part in sorted((tmp_path / "one").glob("part-*.jsonl")):
        assert (tmp_path / "two" / part.name).read_bytes() == part.read_bytes()
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "two").glob("part-*.done.json")}
    assert os.getpid() not in pids  # written by the worker processes


def _docs_for_labelling(path: Path, n: int) -> None:
    """Gold docs (entities + cats) and unlabelled transfer docs with tokens a tokenizer would not make."""
    nlp = spacy.blank("en")
    docs = []
    for i in range(n):
        person, place = PEOPLE[i % len(PEOPLE)], PLACES[i % len(PLACES)]
        words = [person, "flew", "to", place, f"day-{i}", "!"]
        doc = spacy.tokens.Doc(nlp.vocab, words=words, spaces=[True, True, True, True, False, False])
        if i % 3 == 0:  # gold
            doc.ents = [doc.char_span(0, len(person), label="PERSON")]
            doc.cats = {"TRAVEL": 1.0, "WORK": 0.0}
        docs.append(doc)
    DocBin(docs=docs, store_user_data=False).to_disk(path)


def _labels(path: Path):
    nlp = spacy.blank("en")
    return [
        ([t.text for t in d], [(e.start_char, e.end_char, e.label_) for e in d.ents], d.cats)
        for d in iter_docs([path], nlp.vocab)
    ]


@pytest.mark.slow
def test_teacher_label_on_ray_matches_local_and_survives_a_killed_worker(compressed_bert, tmp_path):
    pytest.importorskip("ray")
    from spacy_bertprod.distill.targets import teacher_label

    _docs_for_labelling(tmp_path / "in.spacy", 300)
    local = teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "local")
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "spacy", "bertprod", "teacher-label", str(compressed_bert["int8"])]
    command += [str(tmp_path / "in.spacy"), "--output", str(out), "--engine", "ray", "--workers", "2"]
    command += ["--shard-size", "10", "--report", str(tmp_path / "ray.json")]
    shards = out / "_ray" / "shards"
    run_killing_a_worker(command, shards)
    assert len(list(shards.glob("part-*.done.json"))) == 30  # every shard once
    assert _labels(out) == _labels(tmp_path / "local")  # same docs, order, tokens, entities and cats
    report = json.loads((tmp_path / "ray.json").read_text())
    assert report["engine"] == "ray" and report["docs"] == local["docs"] == 300
    assert report["silver_ner"] == local["silver_ner"] == 200 and report["gold_ner"] == 100
    # A rerun resumes from the finished shards: nothing is labelled again.
    again = subprocess.run(command, capture_output=True, text=True, env=RAY_ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "30 already done, 0 to annotate" in again.stdout
    assert _labels(out) == _labels(tmp_path / "local")


def test_a_killed_teacher_label_resumes_and_writes_what_an_uninterrupted_run_writes(compressed_bert, tmp_path):
    from spacy_bertprod.distill.targets import teacher_label

    _docs_for_labelling(tmp_path / "in.spacy", 600)
    whole = teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "whole", shard_size=20)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "spacy", "bertprod", "teacher-label", str(compressed_bert["int8"])]
    command += [str(tmp_path / "in.spacy"), "--output", str(out), "--shard-size", "20", "--batch-size", "4"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and len(list(out.glob("part-*.done.json"))) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    written = len(list(out.glob("part-*.done.json")))
    assert 3 <= written < 30, "the run was not killed half way"
    report = tmp_path / "resumed.json"
    again = subprocess.run(command + ["--report", str(report)], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = json.loads(report.read_text())
    assert resumed["resumed_docs"] == 20 * written and resumed["written_now"] == 600 - 20 * written
    assert {k: resumed[k] for k in ("docs", "silver_ner", "gold_ner", "soft_cats_teacher_only")} == {
        k: whole[k] for k in ("docs", "silver_ner", "gold_ner", "soft_cats_teacher_only")
    }
    assert _labels(out) == _labels(tmp_path / "whole")
    assert sorted(p.name for p in out.glob("part-*.spacy")) == sorted(
        p.name for p in (tmp_path / "whole").glob("part-*.spacy")
    )
    assert not list(out.glob("*.tmp-*"))


def test_teacher_label_starts_over_for_another_job_and_refuses_a_foreign_folder(compressed_bert, tmp_path):
    from spacy_bertprod.distill.targets import teacher_label

    _docs_for_labelling(tmp_path / "in.spacy", 30)
    teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "out", shard_size=10)
    again = teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "out", shard_size=10)
    assert again["resumed_docs"] == 30 and again["written_now"] == 0
    other = teacher_label(
        compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "out", shard_size=10, temperature=2.0
    )
    assert other["resumed_docs"] == 0 and other["written_now"] == 30
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not written by teacher-label"):
        teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "mine")
    (tmp_path / "file.spacy").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "file.spacy")


def test_teacher_label_refuses_a_bad_engine(compressed_bert, tmp_path):
    from spacy_bertprod.distill.targets import teacher_label

    _docs_for_labelling(tmp_path / "in.spacy", 3)
    with pytest.raises(ValueError, match="--engine must be one of local, ray"):
        teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "o.spacy", engine="spark")
    with pytest.raises(ValueError, match="--workers"):
        teacher_label(compressed_bert["int8"], [tmp_path / "in.spacy"], tmp_path / "o.spacy", engine="ray", workers=0)
