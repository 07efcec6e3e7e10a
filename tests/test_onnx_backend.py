"""The ONNX backend as a spaCy component: listeners, copies, processes, threads, faults."""

import copy
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest
import spacy
import srsly

from conftest import TEXTS, assert_same, make_examples, snapshot

# spaCy's textcat scores an empty doc 0.0 when its whole batch is empty and ~0.5 otherwise,
# so batching comparisons use non-empty texts (empty ones are covered in test_empty_and_odd_inputs).
NON_EMPTY = [t for t in TEXTS if t.strip()]
MORE_TEXTS = [
    f"{p} flew to {c} on day {i}"
    for i, (p, c) in enumerate(zip(["Alice", "Bob", "Carol"] * 10, ["Paris", "Tokyo", "Berlin"] * 10))
]


@pytest.fixture(scope="module")
def onnx_nlp(compressed_bert):
    return spacy.load(compressed_bert["int8"])


@pytest.fixture(scope="module")
def fp32_nlp(compressed_bert):
    # fp32 here; int8 (calibrated activation scales) gets the same checks in test_batch_invariance.py.
    return spacy.load(compressed_bert["fp32"])


def test_listeners_receive_non_zero_vectors(onnx_nlp):
    from spacy_bertprod.listener import TransformerListener

    ner = onnx_nlp.get_pipe("ner")
    tok2vec = next(n for n in ner.model.walk() if any(isinstance(layer, TransformerListener) for layer in n.layers))
    docs = list(onnx_nlp.pipe(["Alice flew to Paris", "Bob works in Berlin"]))
    vectors = tok2vec.predict(docs)
    for doc, array in zip(docs, vectors):
        assert array.shape[0] == len(doc)
        assert (numpy.abs(array).sum(axis=1) > 0).all()
    assert set(onnx_nlp.get_pipe("transformer").listening_components) == {"ner", "textcat"}


def test_component_pickles_and_deep_copies(onnx_nlp):
    from spacy_bertprod.transformer_model import encoder_of, onnx_session_of

    trf = onnx_nlp.get_pipe("transformer")
    doc = onnx_nlp.make_doc("Alice flew to Paris")
    expected = trf.predict([doc])[0].hidden
    for clone in (pickle.loads(pickle.dumps(trf.model)), copy.deepcopy(trf.model), trf.model.copy()):
        assert onnx_session_of(encoder_of(clone)).session_is_built is False  # rebuilt lazily
        numpy.testing.assert_allclose(clone.predict([doc])[0].hidden, expected, atol=1e-6)


def test_n_process_2_matches_n_process_1(fp32_nlp, onnx_nlp):
    texts = NON_EMPTY + MORE_TEXTS
    single = snapshot(fp32_nlp.pipe(texts, n_process=1))
    assert_same(snapshot(fp32_nlp.pipe(texts, n_process=2, batch_size=4)), single)
    # int8 runs in worker processes too, with the same results (calibrated activation scales).
    docs = list(onnx_nlp.pipe(texts, n_process=2, batch_size=4))
    assert [d.text for d in docs] == texts and all(d._.trf_data is not None for d in docs)
    assert_same(snapshot(docs), snapshot(onnx_nlp.pipe(texts)), atol=1e-5)


def test_threads_match_sequential(fp32_nlp):
    texts = (NON_EMPTY + MORE_TEXTS) * 2
    sequential = snapshot(fp32_nlp(t) for t in texts)
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda t: snapshot([fp32_nlp(t)])[0], texts))
    assert_same(threaded, sequential)
    with ThreadPoolExecutor(max_workers=8) as pool:
        chunks = list(pool.map(lambda i: snapshot(fp32_nlp.pipe(texts[i::8])), range(8)))
    for i, chunk in enumerate(chunks):
        assert_same(chunk, sequential[i::8])


def test_same_batch_gives_identical_output_across_runs(onnx_nlp):
    texts = NON_EMPTY + MORE_TEXTS
    first, second = snapshot(onnx_nlp.pipe(texts)), snapshot(onnx_nlp.pipe(texts))
    assert_same(first, second, atol=0)


def test_use_params_and_evaluate_work_but_training_is_refused(onnx_nlp):
    examples = make_examples(onnx_nlp, n=8)
    with onnx_nlp.use_params({}):
        scores = onnx_nlp.evaluate(examples)
    assert "ents_f" in scores
    with pytest.raises(ValueError, match="inference-only"):
        onnx_nlp.get_pipe("transformer").update(examples)


def test_heads_can_train_on_a_frozen_onnx_transformer(compressed_bert):
    nlp = spacy.load(compressed_bert["fp32"])
    examples = make_examples(nlp, n=16)
    optimizer = nlp.resume_training()
    losses = {}
    for doc in nlp.pipe([eg.predicted for eg in examples]):
        pass
    for eg in examples:
        nlp.get_pipe("transformer")(eg.predicted)
    nlp.update(examples, sgd=optimizer, losses=losses, exclude=["transformer"])
    assert losses["ner"] > 0


def test_saved_folder_holds_real_files_and_no_pickles(compressed_bert):
    folder = compressed_bert["int8"] / "transformer"
    assert {"cfg", "tokenizer.json", "model", "model.onnx"} <= {p.name for p in folder.iterdir()}
    cfg = srsly.read_json(folder / "cfg")
    assert cfg["backend"] == "onnx" and len(cfg["onnx_sha256"]) == 64


def _copy(src, tmp_path):
    dst = tmp_path / "pipeline"
    shutil.copytree(src, dst)
    return dst


def test_truncated_onnx_file_gives_a_clear_error(compressed_bert, tmp_path):
    path = _copy(compressed_bert["int8"], tmp_path)
    onnx_file = path / "transformer" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match="model.onnx.*(truncated|checksum)"):
        spacy.load(path)


def test_corrupted_onnx_without_checksum_gives_a_clear_error(compressed_bert, tmp_path):
    path = _copy(compressed_bert["int8"], tmp_path)
    cfg = srsly.read_json(path / "transformer" / "cfg")
    del cfg["onnx_sha256"]
    srsly.write_json(path / "transformer" / "cfg", cfg)
    (path / "transformer" / "model.onnx").write_bytes(b"this is not an onnx model")
    with pytest.raises(ValueError, match="Could not load the ONNX model from .*model.onnx"):
        spacy.load(path)


def test_missing_tokenizer_file_gives_a_clear_error(compressed_bert, tmp_path):
    path = _copy(compressed_bert["int8"], tmp_path)
    (path / "transformer" / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json is missing"):
        spacy.load(path)


def test_pipeline_from_a_newer_version_is_refused(compressed_bert, tmp_path):
    path = _copy(compressed_bert["int8"], tmp_path)
    cfg = srsly.read_json(path / "transformer" / "cfg")
    cfg["format_version"] = 99
    cfg["bertprod_version"] = "9.0.0"
    srsly.write_json(path / "transformer" / "cfg", cfg)
    with pytest.raises(ValueError, match="pip install -U spacy_bertprod"):
        spacy.load(path)


def test_empty_and_odd_inputs(onnx_nlp):
    texts = ["", " ", "\n\n", "a", "😀", "東京", "\x00\x01", "x" * 10000, "مرحبا بالعالم", "e\u0301\u200d"]
    for doc in onnx_nlp.pipe(texts):
        assert doc._.trf_data.align.lengths.shape[0] == len(doc)
        for ent in doc.ents:
            assert 0 <= ent.start_char < ent.end_char <= len(doc.text)
        if doc.cats and len(doc):
            assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)
        elif doc.cats:  # an empty doc scores 0 everywhere, as spaCy scores a lone empty doc
            assert set(doc.cats.values()) == {0.0}
