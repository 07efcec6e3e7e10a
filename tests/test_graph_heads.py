"""compress --heads-in-graph: textcat heads as ONNX nodes give the Python head's doc.cats."""

import random

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.heads import plan_heads
from spacy_bertprod.compress.parity import batch_invariance

from conftest import TEXTS, build_pipeline, make_examples, train

ALL_REDUCTIONS = ("first", "last", "max", "mean")


def _trained(encoders, tmp_path, **kwargs):
    nlp = build_pipeline(encoders["bert"], **kwargs)
    train(nlp, make_examples(nlp), steps=12)
    nlp.to_disk(tmp_path / "torch")
    return tmp_path / "torch"


def _assert_bit_identical_in_any_batch(nlp, texts):
    """The graph's scores for a text equal its scores alone to the bit, in batches and shuffled."""
    alone = [nlp(t).cats for t in texts]
    shuffled = list(range(len(texts)))
    random.Random(0).shuffle(shuffled)
    for order, batch_size in ((range(len(texts)), 7), (range(len(texts)), 64), (shuffled, 5)):
        docs = list(nlp.pipe([texts[i] for i in order], batch_size=batch_size))
        assert [d.cats for d in docs] == [alone[i] for i in order]


def _texts():
    return TEXTS + [eg.reference.text for eg in make_examples(spacy.blank("en"), n=30, seed=3)]


@pytest.fixture(scope="module")
def reduce_all(encoders, tmp_path_factory):
    """A ner + textcat pipeline whose textcat concatenates all four reductions, compressed fp32
    with the head in Python and in the graph."""
    root = tmp_path_factory.mktemp("graph_heads")
    source = _trained(encoders, root, reductions=ALL_REDUCTIONS)
    out = {}
    for label, in_graph in (("python", False), ("graph", True)):
        out[label] = root / label
        out[label + "_report"] = compress_pipeline(
            source, out[label], CompressSettings(quantize="fp32", heads_in_graph=in_graph)
        )
    return out


def test_fp32_graph_head_gives_the_python_heads_scores(reduce_all):
    report = reduce_all["graph_report"]
    assert report["heads_in_graph"]["in_graph"] == ["textcat"]
    assert "ner" in report["heads_in_graph"]["in_python"]  # named, with the reason
    assert report["parity"]["heads_in_graph"]["textcat"]["max_abs_diff"] < 1e-5
    python, graph = spacy.load(reduce_all["python"]), spacy.load(reduce_all["graph"])
    assert graph.pipe_names == python.pipe_names
    texts = [t for t in _texts() if t.strip()]  # spaCy's first/last reductions refuse empty docs in a batch
    for a, b in zip(python.pipe(texts), graph.pipe(texts)):
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == [
            (e.start_char, e.end_char, e.label_) for e in b.ents
        ]
        assert a.cats.keys() == b.cats.keys()
        for label in a.cats:
            assert b.cats[label] == pytest.approx(a.cats[label], abs=1e-5)


def test_graph_scores_do_not_depend_on_batch_mates_to_the_bit(reduce_all):
    _assert_bit_identical_in_any_batch(spacy.load(reduce_all["graph"]), _texts())


def test_docs_longer_than_one_window_use_the_head_in_python(reduce_all):
    graph = spacy.load(reduce_all["graph"])
    short, long, empty = graph("Alice flew to Paris"), graph("Frank moved to Madrid " * 30), graph("")
    assert "textcat" in short._.trf_data.head_scores
    assert len(long._.trf_data.seq_lengths) > 1 and not long._.trf_data.head_scores
    assert not empty._.trf_data.head_scores
    assert long.cats and empty.cats == {label: 0.0 for label in short.cats}  # as spaCy scores a lone empty doc


def test_int8_multilabel_stock_pipeline_same_answer_in_any_batch(encoders, tmp_path):
    """A stock spacy-transformers textcat_multilabel head: sigmoid scores in the graph, equal to its
    Python head on the same int8 hidden states, and the same answer alone, batched, shuffled and
    in two processes."""
    source = _trained(encoders, tmp_path, stock=True, textcat="textcat_multilabel", reductions=("max", "last"))
    report = compress_pipeline(source, tmp_path / "int8", CompressSettings(quantize="int8", heads_in_graph=True))
    assert report["heads_in_graph"]["in_graph"] == ["textcat_multilabel"]
    assert report["parity"]["heads_in_graph"]["textcat_multilabel"]["max_abs_diff"] < 1e-5
    nlp = spacy.load(tmp_path / "int8")
    texts = _texts()
    assert batch_invariance(nlp, texts, batch_sizes=(1, 7, 64))["identical_all"] == 1.0
    _assert_bit_identical_in_any_batch(nlp, texts)
    alone = [nlp(t).cats for t in texts]
    for cats, doc in zip(alone, nlp.pipe(texts, n_process=2, batch_size=5)):
        assert doc.cats == pytest.approx(cats, abs=1e-6)


def test_heads_the_graph_cannot_compute_stay_in_python_with_the_reason():
    listener = {"@architectures": "spacy_bertprod.TransformerListener.v1", "upstream": "*"}
    components = {
        "transformer": {"factory": "bertprod_transformer", "model": {}},
        "cat_max_pool": {
            "factory": "textcat",
            "model": {
                "@architectures": "spacy.TextCatReduce.v1",
                "tok2vec": {**listener, "pooling": {"@layers": "reduce_max.v1"}},
            },
        },
        "cat_cnn": {
            "factory": "textcat",
            "model": {"@architectures": "spacy.TextCatCNN.v2", "tok2vec": {**listener, "pooling": {}}},
        },
        "tagger": {"factory": "tagger", "model": {"tok2vec": {**listener, "pooling": {}}}},
        "bow": {"factory": "textcat", "model": {"@architectures": "spacy.TextCatBOW.v3"}},
    }
    specs, kept = plan_heads(spacy.blank("en"), components, "transformer")
    assert specs == []
    assert "reduce_max.v1" in kept["cat_max_pool"]
    assert "TextCatCNN" in kept["cat_cnn"] and "tagger" in kept["tagger"]
    assert "bow" not in kept  # not listening to the transformer: not a head of it


def test_hidden_states_are_the_same_with_heads_in_the_graph(reduce_all):
    python, graph = spacy.load(reduce_all["python"]), spacy.load(reduce_all["graph"])
    for text in _texts():
        a, b = python(text)._.trf_data.hidden, graph(text)._.trf_data.hidden
        numpy.testing.assert_array_equal(a, b)
