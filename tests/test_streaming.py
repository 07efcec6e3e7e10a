"""Corpora as streams: shard folders, lazy reading, the streamed training corpus, progress lines,
and memory that does not grow with the corpus."""

import json
import random
import subprocess
import sys
from collections import Counter

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_bertprod.corpora.streaming_corpus import StreamingCorpus, shuffle_buffer
from spacy_bertprod.progress import progress_line
from spacy_bertprod.streaming import ShardFolder, count_docs, iter_docs, spacy_files
from spacy_bertprod.texts import count_texts, iter_texts

from conftest import make_examples


def _shards(folder, n, per_file):
    nlp = spacy.blank("en")
    folder.mkdir()
    for start in range(0, n, per_file):
        docs = [nlp.make_doc(f"text number {i}") for i in range(start, min(n, start + per_file))]
        DocBin(docs=docs).to_disk(folder / f"part-{start // per_file:05d}.spacy")
    return nlp


def test_docs_are_read_a_file_at_a_time_in_order_and_counted(tmp_path):
    nlp = _shards(tmp_path / "docs", 25, 10)
    texts = [d.text for d in iter_docs([tmp_path / "docs"], nlp.vocab)]
    assert texts == [f"text number {i}" for i in range(25)]
    assert count_docs([tmp_path / "docs"]) == 25 and len(spacy_files(tmp_path / "docs")) == 3
    assert list(iter_texts(tmp_path / "docs", limit=3)) == texts[:3] and count_texts(tmp_path / "docs") == 25
    with pytest.raises(FileNotFoundError, match="nope"):
        iter_docs([tmp_path / "nope"], nlp.vocab)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .spacy files"):
        count_docs([tmp_path / "empty"])


def test_a_shard_folder_keeps_its_own_jobs_shards_and_starts_over_for_another(tmp_path):
    nlp = spacy.blank("en")
    folder = ShardFolder(tmp_path / "out", {"job": 1}, "test").open()
    folder.write(0, [nlp.make_doc("a b")], {"note": "x"})
    assert folder.done(0)["docs"] == 1 and folder.done(1) is None
    assert ShardFolder(tmp_path / "out", {"job": 1}, "test").open().done(0) is not None
    other = ShardFolder(tmp_path / "out", {"job": 2}, "test").open()
    assert other.restarted and other.done(0) is None
    with pytest.raises(ValueError, match="holds its input"):
        ShardFolder(tmp_path / "out", {"job": 3}, "test").open(inputs=[tmp_path / "out" / "part-00000.spacy"])
    assert (tmp_path / "out" / "_job.json").exists()  # nothing was deleted


def test_the_shuffle_buffer_is_a_permutation_that_holds_at_most_its_window():
    random.seed(0)
    pulled = Counter()

    def items():
        for i in range(1000):
            pulled["n"] += 1
            yield i

    out, most_held = [], 0
    for item in shuffle_buffer(items(), 50):
        most_held = max(most_held, pulled["n"] - len(out))
        out.append(item)
    assert sorted(out) == list(range(1000)) and out != list(range(1000))
    assert most_held <= 51
    assert sorted(shuffle_buffer(range(10), 100)) == list(range(10))


def test_the_streaming_corpus_gives_every_example_once_per_epoch_in_new_orders(tmp_path):
    nlp = _shards(tmp_path / "docs", 95, 20)
    corpus = StreamingCorpus(tmp_path / "docs", shuffle_window=30)
    random.seed(1)
    first = [eg.reference.text for eg in corpus(nlp)]
    second = [eg.reference.text for eg in corpus(nlp)]
    expected = sorted(f"text number {i}" for i in range(95))
    assert sorted(first) == sorted(second) == expected
    assert first != second
    resolved = spacy.registry.resolve(
        {"c": {"@readers": "spacy_bertprod.StreamingCorpus.v1", "path": str(tmp_path / "docs"), "limit": 10}}
    )
    assert len(list(resolved["c"](nlp))) == 10
    with pytest.raises(ValueError, match="shuffle_window"):
        StreamingCorpus(tmp_path / "docs", shuffle_window=0)


def test_the_distilling_ner_takes_its_teachers_labels_not_the_first_examples(trained_bert):
    student = spacy.load(
        trained_bert, config={"components": {"ner": {"factory": "bertprod_distill_ner", "teacher": str(trained_bert)}}}
    )
    teacher_labels = set(spacy.load(trained_bert).get_pipe("ner").labels)
    no_entities = [Example(student.make_doc(t), student.make_doc(t)) for t in ("no names here", "nor here")]
    student.initialize(lambda: no_entities)
    assert set(student.get_pipe("ner").labels) == teacher_labels and teacher_labels


def test_progress_lines_say_done_total_rate_time_left_and_memory():
    line = progress_line("teacher-label", 500, 2000, 10.0)
    assert line.startswith("[teacher-label] 500/2,000 docs, 50.0 docs/s, 0m30s left") and "RSS" in line


@pytest.mark.slow
def test_teacher_label_memory_does_not_grow_with_the_corpus(compressed_bert, tmp_path):
    """Before, every doc and its copy (with hidden states) stayed alive: 30,000 docs took ~300 MB
    more than 3,000. Now memory is one shard's worth whatever the corpus size."""
    nlp = spacy.blank("en")
    texts = [eg.reference.text for eg in make_examples(nlp, n=40)]
    peaks = {}
    for n in (3_000, 30_000):
        folder = tmp_path / f"in-{n}"
        folder.mkdir()
        for start in range(0, n, 5_000):
            docs = [nlp.make_doc(f"{texts[i % len(texts)]} {i}") for i in range(start, min(n, start + 5_000))]
            DocBin(docs=docs).to_disk(folder / f"part-{start // 5_000}.spacy")
        script = (
            "import resource, sys; from spacy_bertprod.distill.targets import teacher_label; "
            f"teacher_label({str(compressed_bert['int8'])!r}, [{str(folder)!r}], {str(tmp_path / f'out-{n}')!r}, "
            "shard_size=1000); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        peaks[n] = int(done.stdout.split()[-1]) / 1e3  # MB
        labelled = json.loads((tmp_path / f"out-{n}" / "part-00000.done.json").read_text())
        assert labelled["docs"] == 1000
    assert peaks[30_000] - peaks[3_000] < 60, peaks
