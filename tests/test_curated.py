"""spacy-curated-transformers pipelines (en_core_web_trf's format) as compress input.

Per encoder family curated-transformers has (BERT, RoBERTa, XLM-R, CamemBERT, ALBERT; random
weights, piece vocabularies trained offline by scripts/curated_pipeline.py) a pipeline with tagger,
morphologizer, parser, ner and trainable_lemmatizer listening through LastTransformerLayerListener,
trained a few steps: our pieces equal the original piece encoder's, the fp32 copy predicts what the
curated pipeline predicts for every head, int8 gives every text the same answer alone, batched and
shuffled, the result loads with torch blocked, and what compress cannot keep is refused by name.
"""

import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.parity import batch_invariance, prediction_agreement
from spacy_bertprod.curated import original_pieces, piece_tokenizer
from spacy_bertprod.errors import InvalidInput

from conftest import BLOCK_TORCH, TEXTS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from curated_pipeline import build  # noqa: E402

FAMILIES = ["bert", "roberta", "xlm-roberta", "camembert", "albert"]
HEADS = ["tagger", "morphologizer", "parser", "ner", "trainable_lemmatizer"]
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
    for layer in ("tags", "morphs", "lemmas", "deps", "sents", "ner", "pos"):
        assert agreement[f"{layer}_identical_docs"] == 1.0, (layer, agreement)
    compress(source, tmp_path / "int8", "int8")
    invariance = batch_invariance(spacy.load(tmp_path / "int8"), CHECK * 2, batch_sizes=(1, 7, 64))
    assert invariance["identical_all"] == 1.0, invariance


SERVE = (
    BLOCK_TORCH
    + """
import spacy
nlp = spacy.load(sys.argv[1])
doc = nlp("Alice flew to Paris and met Bob in Berlin.")
print("SERVED", [t.tag_ for t in doc], [t.dep_ for t in doc])
"""
)


@pytest.mark.slow
def test_converted_pipeline_serves_without_torch(curated, tmp_path):
    compress(curated("roberta"), tmp_path / "int8", "int8")
    run = subprocess.run([sys.executable, "-c", SERVE, str(tmp_path / "int8")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SERVED" in run.stdout
    meta = spacy.load(tmp_path / "int8").meta
    assert not any("curated-transformers" in r and "tokenizers" not in r for r in meta["requirements"]), meta
    assert any(r.startswith("curated-tokenizers") for r in meta["requirements"])


def test_what_compress_cannot_keep_is_refused_by_name(curated, tmp_path):
    source = curated("bert")
    with pytest.raises(InvalidInput, match="--depth"):
        compress_pipeline(source, tmp_path / "cut", CompressSettings(depth=1, sample_texts=SAMPLE))
    scalar = build(tmp_path / "scalar", "bert", heads=["tagger"], listener="scalar", steps=2, n_sentences=20)
    with pytest.raises(InvalidInput, match="ScalarWeightingListener"):
        compress_pipeline(scalar, tmp_path / "out", CompressSettings(sample_texts=SAMPLE))
    assert not (tmp_path / "out").exists()
