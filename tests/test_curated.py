"""spacy-curated-transformers pipelines (en_core_web_trf's format) as compress input.

Per encoder family curated-transformers has (BERT, RoBERTa, XLM-R, CamemBERT, ALBERT; random
weights, piece vocabularies trained offline by scripts/curated_pipeline.py) a pipeline with tagger,
morphologizer, parser, ner and trainable_lemmatizer listening through LastTransformerLayerListener,
trained a few steps: our pieces equal the original piece encoder's, the fp32 copy predicts what the
curated pipeline predicts for every head, int8 gives every text the same answer alone, batched and
shuffled, the result loads with torch blocked, and what compress cannot keep is refused by name.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.parity import batch_invariance, prediction_agreement
from spacy_bertprod.compress.write import rewrite_config
from spacy_bertprod.curated import original_pieces, piece_tokenizer
from spacy_bertprod.errors import InvalidInput

from conftest import BLOCK_TORCH, TEXTS, compressed_cats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from curated_pipeline import build  # noqa: E402

FAMILIES = ["bert", "roberta", "xlm-roberta", "camembert", "albert"]
HEADS = ["tagger", "morphologizer", "parser", "ner", "trainable_lemmatizer", "textcat", "spancat"]
HOSTILE = [
    "",
    " ",
    "  leading and  double  spaces\n\nnew lines\t tabs ",
    "Ça coûte 12,50 € à Paris — naïve café",
    "東京で会いましょう",
    "🙂🙂 Bob 🙂🙂",
    "e-mail: grace@example.com, url https://example.com/a?b=c",
    "ÀÉÎ Õü ß ﬁ ᾌ",
    "word " * 150,  # several strided windows (window 32, stride 24 below)
]
CHECK = TEXTS + HOSTILE
SAMPLE = [t for t in CHECK if t.strip()]


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("curated")
    cache = {}

    def get(family):
        if family not in cache:
            # Small windows so that long texts span several, shared pieces averaged as in curated.
            path = build(root / family, family, heads=HEADS, window=32, stride=24, steps=15, n_sentences=120)
            cache[family] = path
        return cache[family]

    return get


def compress(source: Path, out: Path, quantize: str) -> dict:
    settings = CompressSettings(quantize=quantize, sample_texts=SAMPLE, sample_source="test texts")
    return compress_pipeline(source, out, settings)


@pytest.mark.parametrize("family", FAMILIES)
def test_pieces_equal_the_curated_piece_encoder(curated, family):
    nlp = spacy.load(curated(family))
    proc = nlp.get_pipe("transformer")
    tokenizer = piece_tokenizer(proc, nlp.config["components"]["transformer"]["model"], family)
    docs = [nlp.make_doc(t) for t in CHECK]
    for doc, (ids, lengths) in zip(docs, original_pieces(proc, docs)):
        ours, our_lengths = tokenizer.encoder.encode_doc(doc)
        assert numpy.array_equal(ours, ids), doc.text
        assert numpy.array_equal(our_lengths, lengths[1:-1]), doc.text


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_curated_pipeline_compresses(curated, family, tmp_path):
    source = curated(family)
    report = compress(source, tmp_path / "fp32", "fp32")
    assert report["transformer"]["model_type"] == family
    original, fp32 = spacy.load(source), spacy.load(tmp_path / "fp32")
    assert fp32.pipe_names == original.pipe_names
    agreement = prediction_agreement(original, fp32, CHECK)
    for layer in ("tags", "morphs", "lemmas", "deps", "sents", "ner", "pos", "spans"):
        assert agreement[f"{layer}_identical_docs"] == 1.0, (layer, agreement)
    for doc_original, doc_ours in zip(original.pipe(CHECK), fp32.pipe(CHECK)):
        for label, score in compressed_cats(doc_original.text, doc_original.cats).items():
            assert doc_ours.cats[label] == pytest.approx(score, abs=1e-4), doc_original.text
    compress(source, tmp_path / "int8", "int8")
    if family != "albert":  # --depth cuts the curated encoder too: the cut copies agree
        cut = compress_pipeline(
            source, tmp_path / "cut", CompressSettings(quantize="fp32", depth=1, sample_texts=SAMPLE)
        )
        assert cut["parity"]["predictions"]["tags_identical_docs"] == 1.0, cut["parity"]["predictions"]
    invariance = batch_invariance(spacy.load(tmp_path / "int8"), CHECK * 2, batch_sizes=(1, 7, 64))
    assert invariance["identical_all"] == 1.0, invariance


EVALUATE = (
    BLOCK_TORCH
    + """
import json, spacy
from spacy.cli.evaluate import evaluate
scores = evaluate(sys.argv[1], sys.argv[2])
assert "torch" not in sys.modules
print("SCORES", json.dumps({k: scores[k] for k in ("tag_acc", "dep_uas", "dep_las")}))
"""
)


def gold_ewt(path: Path, n: int = 60) -> Path:
    from spacy.tokens import DocBin
    from spacy.training.converters import conllu_to_docs

    text = (REPO.parent / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-dev.conllu").read_text(encoding="utf8")
    docs = list(conllu_to_docs(text, n_sents=1, no_print=True))[:n]
    DocBin(docs=docs).to_disk(path)
    return path


@pytest.mark.slow
def test_converted_wheel_evaluates_by_name_without_torch(curated, tmp_path):
    """`spacy package` of a converted pipeline: requirements without torch or curated-transformers,
    installed, then `spacy evaluate` by package name with torch blocked scores what the curated
    pipeline scores."""
    source = curated("roberta")
    compress(source, tmp_path / "fp32", "fp32")
    package = [sys.executable, "-m", "spacy", "package", str(tmp_path / "fp32"), str(tmp_path / "dist")]
    package += ["--build", "wheel", "--name", "curated_test", "--version", "0.0.1", "--force"]
    (tmp_path / "dist").mkdir()
    built = subprocess.run(package, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = list((tmp_path / "dist").rglob("*.whl"))
    requirements = spacy.load(tmp_path / "fp32").meta["requirements"]
    assert any(r.startswith("curated-tokenizers") for r in requirements), requirements
    assert not any(r.startswith(("torch", "spacy-curated-transformers", "curated-transformers")) for r in requirements)
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    assert subprocess.run(install, capture_output=True).returncode == 0
    gold = gold_ewt(tmp_path / "dev.spacy")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", EVALUATE, "en_curated_test", str(gold)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stdout + run.stderr
    served = json.loads(run.stdout.split("SCORES", 1)[1])
    from spacy.cli.evaluate import evaluate

    original = evaluate(str(source), gold)
    for key, value in served.items():
        assert value == pytest.approx(original[key], abs=1e-9), (key, value, original[key])
    # compress takes an installed package by name (as `bertprod compress en_core_web_trf OUT`): this
    # one is already compressed, which is refused, after finding it
    sys.path.insert(0, str(site))
    try:
        with pytest.raises(InvalidInput, match="already runs on ONNX Runtime"):
            compress_pipeline("en_curated_test", tmp_path / "again", CompressSettings(sample_texts=SAMPLE))
    finally:
        sys.path.remove(str(site))


def test_what_compress_cannot_keep_is_refused_by_name(curated, tmp_path):
    source = curated("bert")
    with pytest.raises(InvalidInput, match="--trim-vocab"):
        compress_pipeline(source, tmp_path / "trim", CompressSettings(vocab_texts=TEXTS, sample_texts=SAMPLE))
    from spacy_bertprod.distill.student import make_student

    with pytest.raises(InvalidInput, match="spacy-curated-transformers"):
        make_student(source, tmp_path / "student", n_layers=1)
    config = spacy.load(source).config.copy()
    config["components"]["tagger"]["model"]["tok2vec"] = {
        "@architectures": "spacy-curated-transformers.TransformerLayersListener.v1",
        "layers": 3,
        "width": 64,
        "pooling": {"@layers": "reduce_mean.v1"},
    }
    with pytest.raises(InvalidInput, match="TransformerLayersListener"):
        rewrite_config(config, "transformer", {}, {"max_batch_items": 1, "pipe_batch_tokens": 1})


@pytest.mark.slow
def test_scalar_weighting_listeners_are_kept(tmp_path):
    """Heads that weight every layer (ScalarWeightingListener): the graph outputs all layers, the
    weights move from torch into the listener, and the predictions stay the same."""
    source = build(tmp_path / "scalar", "roberta", heads=["tagger", "parser"], listener="scalar", steps=15)
    report = compress(source, tmp_path / "fp32", "fp32")
    assert report["parity"]["predictions"]["tags_identical_docs"] == 1.0
    original, fp32 = spacy.load(source), spacy.load(tmp_path / "fp32")
    weighting = next(node for node in fp32.get_pipe("tagger").model.walk() if node.has_param("layer_weights"))
    weights = weighting.get_param("layer_weights")
    assert weights.shape == (3,) and numpy.abs(weights).sum() > 0  # trained weights, not the zeros of init
    # (SAMPLE: no blank texts) spacy-curated-transformers' own ScalarWeight fails on a doc without pieces
    agreement = prediction_agreement(original, fp32, SAMPLE)
    assert agreement["tags_identical_docs"] == 1.0 and agreement["deps_identical_docs"] == 1.0, agreement
    assert [len(fp32(t)) for t in ("", " ")] == [0, 1]  # ours does not
    assert fp32("Alice flew to Paris.")._.trf_data.layers.shape[1:] == (3, 64)
