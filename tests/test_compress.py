"""`compress`: stock spacy-transformers and bertprod torch pipelines -> ONNX, heads unchanged."""

import json

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline

from conftest import TEXTS, build_pipeline, compressed_cats, make_examples, train


def _predictions(nlp, texts):
    return [([(e.start_char, e.end_char, e.label_) for e in d.ents], d.cats) for d in nlp.pipe(texts)]


def test_fp32_onnx_predicts_like_torch(trained_bert, compressed_bert):
    torch_nlp = spacy.load(trained_bert)
    onnx_nlp = spacy.load(compressed_bert["fp32"])
    assert onnx_nlp.get_pipe("transformer").encoder.name == "bertprod_onnx_encoder"
    for text, (ents_a, cats_a), (ents_b, cats_b) in zip(
        TEXTS, _predictions(torch_nlp, TEXTS), _predictions(onnx_nlp, TEXTS)
    ):
        assert ents_a == ents_b
        expected = compressed_cats(text, cats_a)
        for label in cats_a:
            assert cats_b[label] == pytest.approx(expected[label], abs=1e-4)
    for a, b in zip(torch_nlp.pipe(TEXTS), onnx_nlp.pipe(TEXTS)):
        numpy.testing.assert_allclose(a._.trf_data.hidden, b._.trf_data.hidden, atol=1e-4)


def test_int8_is_small_and_mostly_agrees(compressed_bert):
    fp32 = (compressed_bert["fp32"] / "transformer" / "model.onnx").stat().st_size
    int8 = (compressed_bert["int8"] / "transformer" / "model.onnx").stat().st_size
    assert int8 < fp32  # the < 35% bound is checked on a wider encoder below
    report = json.loads((compressed_bert["int8"] / "compress_report.json").read_text())
    assert report["parity"]["output_mean_cosine_vs_torch"] > 0.9
    assert report["parity"]["predictions"]["ner_identical_docs"] >= 0.7
    assert report["parity"]["predictions"]["textcat_identical_top_label"] >= 0.7


def test_report_contents(compressed_bert):
    report = json.loads((compressed_bert["fp32"] / "compress_report.json").read_text())
    assert report["transformer"]["source"] == "bertprod"
    assert report["fusion_statistics"].get("Attention", 0) == 2  # one fused attention per layer
    # SkipLayerNormalization is left unfused (slower than Add + LayerNormalization on CPU).
    assert report["fusion_statistics"].get("SkipLayerNormalization", 0) == 0
    assert report["fusion_statistics"].get("LayerNormalization", 0) >= 4
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
    sizes = report["sizes_bytes"]
    assert sizes["onnx_fp32"] > 0 and sizes["output_pipeline"] > 0
    for key in ("Exporting to ONNX (torch.onnx)", "Writing the ONNX pipeline"):
        assert key in report["timings_s"]


@pytest.mark.parametrize("quantize", ["fp32", "int8"])
def test_session_does_not_fuse_skip_layer_norm_back(compressed_bert, tmp_path, quantize):
    """The component's session options keep ORT's load-time fusion from rebuilding it."""
    import onnx
    import onnxruntime

    from spacy_bertprod.backends.onnx import RUNTIME_FUSIONS_OFF

    model = compressed_bert[quantize] / "transformer" / "model.onnx"
    ops = {}
    for name, disabled in (("ours", RUNTIME_FUSIONS_OFF), ("default", [])):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(tmp_path / f"{name}.onnx")
        onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
        )
        ops[name] = [node.op_type for node in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node]
    assert "SkipLayerNormalization" not in ops["ours"]
    assert "LayerNormalization" in ops["ours"]
    assert "SkipLayerNormalization" in ops["default"]  # ...which ORT would do by default


def test_config_is_torch_free(compressed_bert):
    config = (compressed_bert["int8"] / "config.cfg").read_text()
    assert "spacy-transformers" not in config
    assert "TorchTransformer" not in config
    assert "spacy_bertprod.OnnxTransformer.v1" in config
    meta = json.loads((compressed_bert["int8"] / "meta.json").read_text())
    reqs = " ".join(meta["requirements"])
    assert "spacy_bertprod" in reqs and "onnxruntime" in reqs


@pytest.fixture(scope="module")
def stock_pipeline(encoders, tmp_path_factory):
    nlp = build_pipeline(encoders["bert"], stock=True)
    train(nlp, make_examples(nlp), steps=8)
    path = tmp_path_factory.mktemp("stock") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.mark.parametrize("quantize", ["fp32", "int8"])
def test_compress_stock_spacy_transformers_pipeline(stock_pipeline, tmp_path, quantize):
    out = tmp_path / quantize
    report = compress_pipeline(stock_pipeline, out, CompressSettings(quantize=quantize))
    assert report["transformer"]["source"] == "spacy-transformers"
    config = (out / "config.cfg").read_text()
    assert "spacy-transformers" not in config and "spacy_bertprod.TransformerListener.v1" in config
    stock = spacy.load(stock_pipeline)
    ours = spacy.load(out)
    assert ours.pipe_names == stock.pipe_names
    if quantize == "fp32":
        assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
        assert _predictions(stock, TEXTS)[0][0] == _predictions(ours, TEXTS)[0][0]
        for text, (ea, ca), (eb, cb) in zip(TEXTS, _predictions(stock, TEXTS), _predictions(ours, TEXTS)):
            assert ea == eb
            expected = compressed_cats(text, ca)
            for label in ca:
                assert cb[label] == pytest.approx(expected[label], abs=1e-3)
    else:
        assert report["parity"]["predictions"]["ner_identical_docs"] >= 0.7


def test_refuses_existing_output_without_force(trained_bert, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FileExistsError, match="--force"):
        compress_pipeline(trained_bert, out, CompressSettings(quantize="fp32"))
    compress_pipeline(trained_bert, out, CompressSettings(quantize="fp32", force=True, optimize=False))
    assert (out / "config.cfg").exists()


def test_refuses_non_pipeline_and_pipeline_without_transformer(tmp_path):
    with pytest.raises(ValueError, match="not a saved spaCy pipeline"):
        compress_pipeline(tmp_path, tmp_path / "out", CompressSettings())
    plain = spacy.blank("en")
    plain.add_pipe("sentencizer")
    plain.to_disk(tmp_path / "plain")
    with pytest.raises(ValueError, match="no transformer component"):
        compress_pipeline(tmp_path / "plain", tmp_path / "out", CompressSettings())
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".compress-*"))  # no half-written leftovers


def test_unsupported_model_type_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2Model

    from spacy_bertprod.backends.hf_folder import load_pretrained

    folder = tmp_path / "gpt2"
    GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50)).save_pretrained(folder)
    with pytest.raises(ValueError, match="'gpt2' model"):
        load_pretrained(str(folder))


def test_cli_compress(trained_bert, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "bertprod", "compress", str(trained_bert), str(out), "--quantize", "int8"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Quantising to int8" in result.stdout
    assert (out / "compress_report.json").exists()
    again = subprocess.run(
        [sys.executable, "-m", "spacy", "bertprod", "compress", str(trained_bert), str(out)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "--force" in again.stdout


@pytest.mark.parametrize("quantize_embeddings", [False, True])
def test_int8_file_under_35_percent_of_fp32(tmp_path, quantize_embeddings):
    """On an encoder whose weights are mostly matrices (as in real BERTs) int8 is < 35% of fp32."""
    from spacy_bertprod.compress.quantize import QuantizeSettings

    from conftest import save_bert

    encoder = save_bert(tmp_path / "wide", hidden_size=128, intermediate_size=512)
    nlp = build_pipeline(encoder)
    nlp.initialize(lambda: make_examples(nlp, n=8))
    nlp.to_disk(tmp_path / "pipeline")
    sizes = {}
    for quantize in ("fp32", "int8"):
        settings = CompressSettings(
            quantize=quantize, quantization=QuantizeSettings(quantize_embeddings=quantize_embeddings)
        )
        report = compress_pipeline(tmp_path / "pipeline", tmp_path / quantize, settings)
        sizes[quantize] = report["sizes_bytes"]["onnx_final"]
    assert sizes["int8"] < 0.35 * sizes["fp32"], sizes


def test_ner_with_lexical_features_trains_and_compresses_unchanged(encoders, tmp_path):
    """`bertprod data --lexical-width`: the NER head reads the transformer's token vectors and
    spaCy's hash embeddings side by side, learns from both, and the compressed (fp32) pipeline gives
    the torch pipeline's entities and cats."""
    from spacy.util import load_model_from_config

    from spacy_bertprod.corpora.config import add_lexical_features

    config = add_lexical_features(build_pipeline(encoders["bert"]).config, 16)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = make_examples(nlp)
    train(nlp, examples, steps=8)
    ner = nlp.get_pipe("ner").model
    assert ner.get_ref("tok2vec").layers[-1].get_dim("nI") == 32 + 16  # the test BERT's width + lexical
    assert any(node.name == "hashembed" for node in ner.walk())
    nlp.to_disk(tmp_path / "torch")
    compress_pipeline(tmp_path / "torch", tmp_path / "fp32", CompressSettings(quantize="fp32"))
    onnx_nlp = spacy.load(tmp_path / "fp32")
    texts = TEXTS + [eg.reference.text for eg in examples[:10]]
    for text, (ents_a, cats_a), (ents_b, cats_b) in zip(texts, _predictions(nlp, texts), _predictions(onnx_nlp, texts)):
        assert ents_a == ents_b
        for label, score in compressed_cats(text, cats_a).items():
            assert cats_b[label] == pytest.approx(score, abs=1e-4)


def test_the_int8_fallback_stops_at_a_graph_that_changes_nothing(monkeypatch, tmp_path):
    """The min/max graph changes no prediction of the sample: the smoothed graph is not built."""
    from spacy_bertprod.compress import int8 as stages
    from spacy_bertprod.errors import Int8Warning

    tried = []

    def recalibrate(loaded, shrunk, graphs, settings, work, label, timings):
        tried.append(label)
        return graphs, work, {"agreement_check": {"changed_share": 0.0}}

    monkeypatch.setattr(stages, "_recalibrate", recalibrate)
    settings = CompressSettings(quantize="int8")
    first = {"agreement_check": {"changed_share": 0.08}}
    with pytest.warns(Int8Warning, match="W001 percentile-99.99 ranges change 8%"):
        _, _, parity, kept = stages.min_max_fallback(None, None, "graphs", settings, tmp_path, first, {})
    assert tried == ["min/max"]
    assert parity["min_max_fallback"]["kept"] == "min/max"
    assert parity["min_max_fallback"]["not_tried"] == ["smoothed min/max"]
    assert kept.quantization.calibration_percentile == 100.0
