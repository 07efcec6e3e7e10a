"""Sentence vectors: doc.vector / span.vector / doc.similarity from the encoder's pooling."""

import random
import shutil

import numpy
import pytest
import spacy
import srsly

from spacy_bertprod.sentence_vectors import SentencePooling, from_sentence_transformers, pool, resolve

from conftest import TEXTS

SENTENCES = [
    "Alice flew to Paris yesterday",
    "Bob works in Berlin with Carol",
    "how do i top up my card in Lisbon",
    "Grace visited Tokyo and met Dave",
    "why was my payment declined",
    "Frank moved to Madrid",
]


def st_folder(encoders, tmp_path, pooling="mean", normalize=True, extra=()):
    """The tiny BERT as a sentence-transformers folder (modules.json, 1_Pooling, Normalize)."""
    folder = tmp_path / f"st-{pooling}-{normalize}"
    shutil.copytree(encoders["bert"], folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    modules += [{"idx": len(modules), "name": kind, "path": kind, "type": kind} for kind in extra]
    srsly.write_json(folder / "modules.json", modules)
    (folder / "1_Pooling").mkdir()
    keys = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}
    config = {"word_embedding_dimension": 32, **{key: False for key in keys.values()}}
    config[keys.get(pooling, pooling)] = True
    srsly.write_json(folder / "1_Pooling" / "config.json", config)
    return folder


def embedder(folder, **settings):
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bertprod.TorchTransformer.v2",
        "name": str(folder),
        "get_spans": {"@misc": "spacy_bertprod.strided_spans.v1", "window": 16, "stride": 12},
    }
    nlp.add_pipe("bertprod_transformer", config={"model": model, **settings})
    nlp.initialize()
    return nlp


def reference(folder, texts, mode="mean", normalize=True):
    """What sentence-transformers computes: the encoder over each text, pooled under its mask."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    if mode == "mean":
        vectors = (hidden * mask).sum(1) / mask.sum(1)
    elif mode == "cls":
        vectors = hidden[:, 0]
    else:
        vectors = hidden.masked_fill(mask == 0, -1e9).max(1).values
    if normalize:
        vectors = torch.nn.functional.normalize(vectors, dim=1)
    return vectors.numpy()


@pytest.mark.parametrize("mode,normalize", [("mean", True), ("cls", False), ("max", True)])
def test_doc_vector_is_the_sentence_transformers_embedding(encoders, tmp_path, mode, normalize):
    folder = st_folder(encoders, tmp_path, mode, normalize)
    nlp = embedder(folder)
    assert nlp.get_pipe("bertprod_transformer").pooling == SentencePooling(
        mode, normalize, f"sentence-transformers ({folder})"
    )
    docs = list(nlp.pipe(SENTENCES))
    numpy.testing.assert_allclose([d.vector for d in docs], reference(folder, SENTENCES, mode, normalize), atol=1e-5)
    for doc in docs:
        numpy.testing.assert_array_equal(doc.vector, doc._.sentence_vector)
        assert doc.has_vector
        if normalize:
            assert doc.vector_norm == pytest.approx(1.0, abs=1e-5)


def test_similarity_is_the_cosine_of_the_vectors(encoders, tmp_path):
    nlp = embedder(st_folder(encoders, tmp_path, "mean", False))
    a, b = nlp("Alice flew to Paris yesterday"), nlp("Bob works in Berlin with Carol")
    cosine = float(numpy.dot(a.vector, b.vector) / (numpy.linalg.norm(a.vector) * numpy.linalg.norm(b.vector)))
    assert a.similarity(b) == pytest.approx(cosine, abs=1e-6)
    assert a.similarity(a) == pytest.approx(1.0, abs=1e-6)
    assert a[0:2].similarity(b) == pytest.approx(b.similarity(a[0:2]), abs=1e-6)
    empty = nlp("")
    assert not empty.has_vector and empty.similarity(a) == 0.0


def test_span_vector_pools_the_rows_aligned_to_its_tokens(encoders, tmp_path):
    nlp = embedder(st_folder(encoders, tmp_path, "mean", False))
    doc = nlp("Grace visited Tokyo and met Dave in London")
    data = doc._.trf_data
    span = doc[2:5]
    rows = sorted({int(r) for r in data.align[2:5].dataXd.reshape(-1)})
    numpy.testing.assert_allclose(span.vector, data.hidden[rows].mean(axis=0), atol=1e-6)
    assert not numpy.allclose(span.vector, doc.vector)


def test_long_docs_pool_every_window_by_the_stated_rule(encoders, tmp_path):
    nlp = embedder(st_folder(encoders, tmp_path, "mean", False), sentence_vector="cls")
    doc = nlp(" ".join(random.Random(0).choices(SENTENCES, k=12)))
    data = doc._.trf_data
    assert len(data.seq_lengths) > 2 and data.seq_lengths.sum() == len(data.hidden)
    starts = numpy.concatenate([[0], numpy.cumsum(data.seq_lengths)[:-1]])
    weights = data.seq_lengths / data.seq_lengths.sum()
    numpy.testing.assert_allclose(doc.vector, (data.hidden[starts] * weights[:, None]).sum(0), atol=1e-5)
    numpy.testing.assert_allclose(
        pool(data.hidden, data.seq_lengths, "mean"),
        sum(w * data.hidden[s : s + n].mean(0) for s, n, w in zip(starts, data.seq_lengths, weights)),
        atol=1e-5,
    )


def test_pooling_settings_precedence_and_errors(encoders, tmp_path):
    folder = st_folder(encoders, tmp_path, "cls", True)
    assert resolve("auto", None, str(folder)).mode == "cls"
    assert resolve("max", None, str(folder)) == SentencePooling("max", False, "config")
    assert resolve("auto", None, str(folder), {"mode": "mean", "normalize": False}).mode == "mean"
    assert resolve("auto", False, str(folder)).normalize is False
    assert resolve("auto", None, str(encoders["bert"])) == SentencePooling()
    with pytest.raises(ValueError, match="sentence_vector = 'avg'"):
        resolve("avg", None, None)
    dense = st_folder(encoders, tmp_path / "dense", "mean", True, extra=["sentence_transformers.models.Dense"])
    with pytest.raises(ValueError, match="Dense.*does not run"):
        from_sentence_transformers(dense)
    with pytest.warns(UserWarning, match="mean of the wordpieces instead"):
        assert resolve("auto", None, str(dense)).mode == "mean"
    sqrt = st_folder(encoders, tmp_path / "sqrt", "pooling_mode_mean_sqrt_len_tokens", False)
    with pytest.raises(ValueError, match="mean_sqrt_len"):
        from_sentence_transformers(sqrt)


def test_none_leaves_spacy_defaults(encoders, tmp_path):
    nlp = embedder(st_folder(encoders, tmp_path), sentence_vector="none")
    doc = nlp("Alice flew to Paris yesterday")
    assert "vector" not in doc.user_hooks
    assert not doc.has_vector


def test_pooling_survives_saving_and_compress(encoders, tmp_path):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    folder = st_folder(encoders, tmp_path, "mean", True)
    nlp = embedder(folder)
    nlp.to_disk(tmp_path / "torch")
    expected = [d.vector for d in nlp.pipe(SENTENCES)]
    reloaded = spacy.load(tmp_path / "torch")
    assert reloaded.get_pipe("bertprod_transformer").pooling.normalize
    numpy.testing.assert_allclose([d.vector for d in reloaded.pipe(SENTENCES)], expected, atol=1e-6)
    compress_pipeline(tmp_path / "torch", tmp_path / "int8", CompressSettings(quantize="int8", sample_texts=SENTENCES))
    int8 = spacy.load(tmp_path / "int8")
    assert int8.get_pipe("bertprod_transformer").pooling.normalize
    vectors = [d.vector for d in int8.pipe(SENTENCES)]
    cosines = [float(numpy.dot(a, b)) for a, b in zip(vectors, expected)]
    assert min(cosines) > 0.95


def test_same_text_same_vector_in_any_batch_and_process(compressed_bert):
    nlp = spacy.load(compressed_bert["int8"])
    texts = [t for t in TEXTS if t.strip()] * 3
    alone = [nlp(t).vector for t in texts]
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    for batch_size in (1, 4, 64):
        shuffled = list(nlp.pipe([texts[i] for i in order], batch_size=batch_size))
        for doc, i in zip(shuffled, order):
            numpy.testing.assert_array_equal(doc.vector, alone[i])
    for doc, expected in zip(nlp.pipe(texts, n_process=2, batch_size=4), alone):
        numpy.testing.assert_array_equal(doc._.sentence_vector, expected)


def test_embedder_command_builds_a_compressed_embedding_pipeline(encoders, tmp_path):
    import subprocess
    import sys

    folder = st_folder(encoders, tmp_path, "mean", True)
    out = tmp_path / "embedder"
    subprocess.run(
        [sys.executable, "-m", "spacy", "bertprod", "embedder", str(folder), str(out), "--quantize", "fp32"],
        check=True,
        capture_output=True,
    )
    nlp = spacy.load(out)
    assert nlp.pipe_names == ["transformer"]
    numpy.testing.assert_allclose([d.vector for d in nlp.pipe(SENTENCES)], reference(folder, SENTENCES), atol=1e-5)
    report = srsly.read_json(out / "compress_report.json")["parity"]
    assert report["predictions"]["sentence_vector_min_cosine"] > 0.9999
    assert report["agreement_check"]["passed"]


def test_embedder_refuses_what_it_cannot_reproduce_before_any_work(encoders, tmp_path):
    from spacy_bertprod.compress import CompressSettings
    from spacy_bertprod.compress.embedder import EmbedderSettings, build_embedder

    def build(folder, **settings):
        return build_embedder(folder, tmp_path / "out", EmbedderSettings(**settings), CompressSettings())

    with pytest.raises(ValueError, match="not a sentence-transformers folder.*--pooling"):
        build(encoders["bert"])
    dense = st_folder(encoders, tmp_path / "dense", extra=["sentence_transformers.models.Dense"])
    with pytest.raises(ValueError, match="Dense"):
        build(dense)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        build(tmp_path / "nowhere")
    broken = st_folder(encoders, tmp_path / "broken")
    (broken / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        build(broken)
    with pytest.raises(ValueError, match="--stride"):
        build(st_folder(encoders, tmp_path / "ok"), stride=500)
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="--force"):
        build(st_folder(encoders, tmp_path / "ok2"))


def test_docs_serialised_before_seq_lengths_pool_as_one_window():
    from spacy_bertprod.data import TransformerData

    hidden = numpy.arange(12, dtype="float32").reshape(4, 3)
    old = {"input_ids": numpy.arange(4), "hidden": hidden, "align_data": numpy.zeros((0,), "int32")}
    data = TransformerData.from_dict({**old, "align_lengths": numpy.zeros((0,), "int32")})
    assert data.seq_lengths.tolist() == [4] and data.pooling == "mean"
    numpy.testing.assert_allclose(pool(data.hidden, data.seq_lengths, "cls"), hidden[0])
    numpy.testing.assert_allclose(
        pool(data.hidden, data.seq_lengths, "mean,normalize"),
        hidden.mean(0) / numpy.linalg.norm(hidden.mean(0)),
        rtol=1e-6,
    )
    assert TransformerData.from_dict(data.to_dict()).pooling == "mean"
