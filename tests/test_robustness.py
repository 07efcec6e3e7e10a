"""Hostile input, long documents, faults and safe loading (issue: reliability and security)."""

import pickle
import shutil

import numpy
import pytest
import spacy
import srsly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


class Planted:
    """A pickle that, if ever unpickled, leaves a marker file behind (arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def onnx_fp32(compressed_bert):
    return spacy.load(compressed_bert["fp32"])


@pytest.fixture(scope="module")
def torch_nlp(trained_bert):
    return spacy.load(trained_bert)


def _check_doc(doc):
    data = doc._.trf_data
    assert data.align.lengths.shape[0] == len(doc)
    assert data.hidden.shape[0] == data.input_ids.shape[0]
    assert numpy.isfinite(data.hidden).all()
    for ent in doc.ents:
        assert 0 <= ent.start_char < ent.end_char <= len(doc.text)
        assert doc.text[ent.start_char : ent.end_char] == ent.text
    if doc.cats:
        total = sum(doc.cats.values())
        # spaCy's textcat scores 0.0 for everything when a whole batch has no tokens.
        assert total == pytest.approx(1.0, abs=1e-4) or (len(doc) == 0 and total == 0.0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(texts=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), min_size=1, max_size=6))
def test_random_unicode_onnx(onnx_fp32, texts):
    for doc in onnx_fp32.pipe(texts):
        _check_doc(doc)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(texts=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=200), min_size=1, max_size=4))
def test_random_unicode_torch(torch_nlp, texts):
    for doc in torch_nlp.pipe(texts):
        _check_doc(doc)


HOSTILE = [
    "",
    " ",
    "\t\n\r",
    "a",
    "😀" * 50,
    "東京都渋谷区" * 20,
    "مرحبا بالعالم " * 10,
    "e\u0301" * 30,
    "👨\u200d👩\u200d👧" * 10,
    "\x00\x01\x02\x1b[31m",
    "\ufeff\u200b\u2028\u2029",
    "x" * 10000,
    "http://" + "a/" * 3000,
    "[UNK] [CLS] [SEP] [PAD] <s> </s>",
    "ǅ̸̧̛̖̗̘̙̜̝̞̟̠̤̥̦̩̪̫̬̭̮̯̰̱̲̳̹̺̻̼ͅ͏͓͔͕͖͙͚",
]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_hostile_inputs(onnx_fp32, torch_nlp, backend):
    nlp = onnx_fp32 if backend == "onnx" else torch_nlp
    for doc in nlp.pipe(HOSTILE):
        _check_doc(doc)
    giant = nlp("x" * 10000)
    assert giant._.trf_data.align.lengths[0] > 0


def test_long_document_every_token_gets_a_vector(onnx_fp32):
    words = ("Alice flew to Paris and met Bob in Berlin . " * 5000).split()
    assert len(words) == 50000
    doc = onnx_fp32(" ".join(words))
    lengths = doc._.trf_data.align.lengths
    assert (lengths > 0).all(), "every token of a 50,000-word doc is aligned to wordpieces"
    from spacy_bertprod.listener import TransformerListener

    tok2vec = next(
        n
        for n in onnx_fp32.get_pipe("ner").model.walk()
        if any(isinstance(layer, TransformerListener) for layer in n.layers)
    )
    vectors = tok2vec.predict([doc])[0]
    assert (numpy.abs(vectors).sum(axis=1) > 0).all()
    # The text repeats every 10 tokens and windows start every 12 (tiny test pipeline), so
    # tokens 60 apart see identical windows: a token 48,000 tokens in gets the vector of one
    # near the start, not zeros or a truncated window's leftovers.
    near, far = vectors[60:70], vectors[48000:48010]
    cosine = (near * far).sum(1) / numpy.linalg.norm(near, axis=1) / numpy.linalg.norm(far, axis=1)
    assert cosine.min() > 0.99
    labels_near = {(e.start % 10, e.label_) for e in doc.ents if 60 <= e.start < 1000}
    labels_far = {(e.start % 10, e.label_) for e in doc.ents if 48000 <= e.start < 49000}
    assert labels_near == labels_far, "entities are found at the end of the doc as at its start"


def test_malicious_pickles_are_never_executed(compressed_bert, trained_bert, tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(Planted(marker))
    # A pickle where a careless loader would look: torch checkpoints next to ours, in both backends.
    for src, name in ((compressed_bert["int8"], "onnx"), (trained_bert, "torch")):
        path = tmp_path / name
        shutil.copytree(src, path)
        for planted in ("pytorch_model.bin", "model.pt", "weights.pkl"):
            (path / "transformer" / planted).write_bytes(payload)
        nlp = spacy.load(path)
        nlp("Alice flew to Paris")
        # Replace the thinc model file itself with the pickle: loading must fail, not execute it.
        (path / "transformer" / "model").write_bytes(payload)
        with pytest.raises(Exception):
            spacy.load(path)
    assert not marker.exists()


def test_model_dir_with_only_a_pickled_checkpoint_is_refused(encoders, tmp_path):
    from spacy_bertprod.backends.hf_folder import load_pretrained

    marker = tmp_path / "PWNED"
    folder = tmp_path / "pickled"
    shutil.copytree(encoders["bert"], folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(FileNotFoundError, match="does not unpickle"):
        load_pretrained(str(folder))
    assert not marker.exists()


def test_heads_of_another_width_are_refused(compressed_bert, tmp_path):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    from conftest import build_pipeline, make_examples, save_bert

    wide = save_bert(tmp_path / "wide", hidden_size=64, intermediate_size=64)
    nlp = build_pipeline(wide)
    nlp.initialize(lambda: make_examples(nlp, n=8))
    nlp.to_disk(tmp_path / "wide-torch")
    compress_pipeline(tmp_path / "wide-torch", tmp_path / "wide-onnx", CompressSettings(quantize="fp32"))
    mixed = tmp_path / "mixed"
    shutil.copytree(compressed_bert["fp32"], mixed)
    shutil.rmtree(mixed / "transformer")
    shutil.copytree(tmp_path / "wide-onnx" / "transformer", mixed / "transformer")
    with pytest.raises(ValueError, match="32-wide transformer vectors but 'transformer' produces 64-wide"):
        spacy.load(mixed)


def test_onnx_file_of_another_width_is_refused(compressed_bert, tmp_path):
    import hashlib

    from transformers import AutoModel

    from spacy_bertprod.compress.export import export_onnx

    from conftest import save_bert

    other = AutoModel.from_pretrained(save_bert(tmp_path / "w64", hidden_size=64, intermediate_size=64))
    path = tmp_path / "pipeline"
    shutil.copytree(compressed_bert["fp32"], path)
    export_onnx(other, path / "transformer" / "model.onnx")
    cfg = srsly.read_json(path / "transformer" / "cfg")
    cfg["onnx_sha256"] = hashlib.sha256((path / "transformer" / "model.onnx").read_bytes()).hexdigest()
    srsly.write_json(path / "transformer" / "cfg", cfg)
    with pytest.raises(ValueError, match="64-wide vectors but this component .* expect 32"):
        spacy.load(path)


def test_interrupted_compress_leaves_nothing(trained_bert, tmp_path, monkeypatch):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("simulated Ctrl-C during quantisation")

    monkeypatch.setattr("spacy_bertprod.compress.quantize.quantize_onnx", boom)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        compress_pipeline(trained_bert, out, CompressSettings(quantize="int8"))
    assert not out.exists()
    assert not list(tmp_path.glob(".compress-*"))


def test_missing_onnxruntime_gives_install_hint(compressed_bert, monkeypatch):
    import builtins

    from spacy_bertprod.backends.onnx import OnnxSession

    real_import = builtins.__import__

    def no_ort(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    session = OnnxSession(["CPUExecutionProvider"], 0, 1)
    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        session.set_model((compressed_bert["fp32"] / "transformer" / "model.onnx").read_bytes())


def test_memory_is_bounded_when_streaming(onnx_fp32):
    import psutil

    process = psutil.Process()
    texts = [f"Alice flew to Paris on day {i} and met Bob #{i % 97}" for i in range(3000)]
    for _ in onnx_fp32.pipe(texts[:500]):
        pass
    before = process.memory_info().rss
    for _ in onnx_fp32.pipe(texts):
        pass
    growth_mb = (process.memory_info().rss - before) / 1e6
    assert growth_mb < 100, f"RSS grew by {growth_mb:.0f} MB over 3,000 docs"
