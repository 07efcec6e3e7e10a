"""Every supported encoder family through every stage, on small random-weight models built offline.

Per family (scripts/tiny_encoder.py: the family's architecture and a tokenizer of its kind): a
stock spacy-transformers pipeline (ner + textcat) trained a few steps is compressed to fp32 and
int8 ONNX; fp32 predicts what the stock pipeline predicts, int8 gives every text the same answer
alone, batched and shuffled, the results load with torch blocked, the wordpiece alignment equals
spacy-transformers', and make-student / pruning work or refuse naming the family.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.parity import batch_invariance
from spacy_bertprod.families import FAMILIES

from conftest import BLOCK_TORCH as BLOCK_TORCH_PRELUDE
from conftest import PEOPLE, PLACES, TEXTS, build_pipeline, compressed_cats, make_examples, train

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from tiny_encoder import FAMILY_SPECS, build_family_encoder  # noqa: E402

ALL = sorted(FAMILIES)
CHECK_TEXTS = (
    TEXTS
    + [f"{p} flew to {q} with {r}" for p, q, r in zip(PEOPLE, PLACES, reversed(PEOPLE))]
    + [
        "Ça coûte 12,50 € à Paris — naïve café",
        "東京で会いましょう",
        "Привет, Alice! Как дела в Berlin?",
        "🙂🙂 Bob 🙂🙂",
        "e-mail: grace@example.com, url https://example.com/a?b=c",
    ]
)

SAMPLE = [t for t in CHECK_TEXTS if t.strip()] * 2


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


class Built:
    """Per family, built on first use and shared by the tests of this module."""

    def __init__(self, root: Path):
        self.root = root
        self.cache = {}

    def __call__(self, family: str):
        if family not in self.cache:
            folder = self.root / family
            encoder = build_family_encoder(family, folder / "encoder")
            nlp = build_pipeline(encoder, stock=True)
            train(nlp, make_examples(nlp), steps=6)
            nlp.to_disk(folder / "stock")
            reports = {}
            for quantize in ("fp32", "int8"):
                # A small sample keeps the suite fast (the built-in 329: reports/encoder_families).
                settings = CompressSettings(quantize=quantize, sample_texts=SAMPLE, sample_source="test texts")
                reports[quantize] = compress_pipeline(folder / "stock", folder / quantize, settings)
            self.cache[family] = (folder, reports)
        return self.cache[family]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return Built(tmp_path_factory.mktemp("families"))


def test_every_family_has_a_tiny_builder():
    assert set(FAMILY_SPECS) == set(FAMILIES)


@pytest.mark.slow
@pytest.mark.parametrize("family", ALL)
def test_stock_pipeline_compresses(built, family):
    folder, reports = built(family)
    stock, fp32, int8 = (spacy.load(folder / name) for name in ("stock", "fp32", "int8"))
    for report in reports.values():
        assert report["transformer"]["model_type"] == family
        assert report["transformer"]["family"] == FAMILIES[family].label
        assert report["fusion"]["note"]
        fused = report["fusion"]["attention_fused_layers"] > 0
        assert fused or not FAMILIES[family].attention_fusion, report["fusion"]
    assert reports["fp32"]["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
    for doc_stock, doc_ours in zip(stock.pipe(CHECK_TEXTS), fp32.pipe(CHECK_TEXTS)):
        assert ents(doc_ours) == ents(doc_stock), doc_stock.text
        for label, score in compressed_cats(doc_stock.text, doc_stock.cats).items():
            assert doc_ours.cats[label] == pytest.approx(score, abs=1e-3)
    # "" included: spaCy's own textcat scores an empty doc 0.0 when its whole batch is empty and
    # runs the model otherwise; the compressed pipeline's head in the graph scores it 0 in any batch.
    invariance = batch_invariance(int8, CHECK_TEXTS * 3, batch_sizes=(1, 5, 64))
    assert invariance["identical_all"] == 1.0, invariance
    assert reports["int8"]["parity"]["batch_invariance"]["identical_all"] == 1.0


BLOCK_TORCH = (
    BLOCK_TORCH_PRELUDE
    + """
import spacy
for path in sys.argv[1:]:
    doc = spacy.load(path)("Alice flew to Paris")
    assert doc._.trf_data.hidden.shape[1] > 0
print("LOADED", len(sys.argv) - 1)
"""
)


@pytest.mark.slow
def test_compressed_families_load_without_torch(built):
    paths = [str(built(family)[0] / "int8") for family in ALL]
    run = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *paths], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"LOADED {len(ALL)}" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("family", ALL)
def test_make_student_per_family(built, family, tmp_path):
    from spacy_bertprod.backends.hf_folder import load_pretrained
    from spacy_bertprod.distill.student import make_student

    folder, _ = built(family)
    for pick in ("bottom", "spread"):
        info = make_student(folder / "stock", tmp_path / pick, 2, pick=pick)
        module, tokenizer = load_pretrained(str(tmp_path / pick))
        assert module.config.num_hidden_layers == 2 and module.config.model_type == family
        assert info["layer_map"] == ([0, 1] if pick == "bottom" else info["layer_map"])
        doc = spacy.blank("en")("Alice flew to Paris")
        assert tokenizer.encode_spans([doc[:]])[0][0].ids.size > 2


def test_modernbert_students_keep_the_attention_pattern(tmp_path):
    from spacy_bertprod.distill.student import make_student

    encoder = build_family_encoder("modernbert", tmp_path / "teacher", layers=6)  # global: layers 0 and 3
    info = make_student(encoder, tmp_path / "spread", 3, pick="spread")
    assert info["layer_map"] == [0, 4, 5]  # student layer 0 global, 1-2 local
    with pytest.raises(ValueError, match="ModernBERT's attention pattern.*--pick bottom"):
        make_student(encoder, tmp_path / "bad", 3, layer_map=[1, 3, 5])


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in ALL if not FAMILIES[f].prunable])
def test_pruning_refuses_families_without_prune_heads(built, family, tmp_path):
    folder, _ = built(family)
    examples = tmp_path / "dev.spacy"
    nlp = spacy.blank("en")
    from spacy.tokens import DocBin

    DocBin(docs=[e.reference for e in make_examples(nlp, n=4)]).to_disk(examples)
    settings = CompressSettings(quantize="fp32", prune_heads=0.5, prune_data=examples)
    with pytest.raises(ValueError, match=f"{FAMILIES[family].label} encoder.*no prune_heads"):
        compress_pipeline(folder / "stock", tmp_path / "out", settings)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_mpnet_prunes_feed_forward_units_but_refuses_heads(built, tmp_path):
    from spacy.tokens import DocBin

    folder, _ = built("mpnet")
    examples = tmp_path / "dev.spacy"
    DocBin(docs=[e.reference for e in make_examples(spacy.blank("en"), n=8)]).to_disk(examples)
    with pytest.raises(ValueError, match="MPNet encoder.*relative position bias.*--prune-ffn"):
        compress_pipeline(
            folder / "stock", tmp_path / "h", CompressSettings(quantize="fp32", prune_heads=0.5, prune_data=examples)
        )
    settings = CompressSettings(quantize="fp32", prune_ffn=0.5, prune_data=examples)
    report = compress_pipeline(folder / "stock", tmp_path / "ffn", settings)
    assert report["pruning"]["ffn_units_kept_per_layer"] == report["pruning"]["ffn_units_original"] // 2
    assert spacy.load(tmp_path / "ffn")("Alice flew to Paris")._.trf_data.hidden.shape[1] > 0


@pytest.mark.parametrize("family", ["mpnet", "roberta", "modernbert", "xlm-roberta", "deberta-v2"])
def test_alignment_matches_spacy_transformers_per_tokenizer(family, tmp_path):
    """WordPiece with RoBERTa-style specials, byte-level BPE (offsets that include the space) and
    SentencePiece/Unigram: our alignment is spacy-transformers' for each."""
    from spacy_transformers.align import get_alignment_via_offset_mapping
    from test_tokenization import TRICKY, tokens_by_wordpiece
    from transformers import AutoTokenizer

    from spacy_bertprod.backends.hf_folder import load_pretrained
    from spacy_bertprod.span_getters import configure_strided_spans
    from spacy_bertprod.tokenization import encode_docs

    encoder = build_family_encoder(family, tmp_path / family, layers=1)
    hf = AutoTokenizer.from_pretrained(encoder, use_fast=True)
    _, ours = load_pretrained(str(encoder))
    nlp = spacy.blank("en")
    for text in TRICKY + CHECK_TEXTS[-5:]:
        doc = nlp(text)
        spans = configure_strided_spans(window=4, stride=3)([doc])[0]
        if not spans:
            continue
        encoded = hf([s.text for s in spans], return_offsets_mapping=True, padding="longest", return_tensors="np")
        expected = get_alignment_via_offset_mapping(spans, encoded["offset_mapping"])
        batch = encode_docs(ours, [doc], [spans])
        got = tokens_by_wordpiece(batch.sequences, batch.aligns[0], encoded["input_ids"].shape[1])
        flat, theirs = expected.dataXd.tolist(), []
        for n in expected.lengths.tolist():
            theirs.append(sorted(flat[:n]))
            flat = flat[n:]
        assert got == theirs, text


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta"])
def test_augment_replaces_whole_words_for_every_tokenizer_kind(family, tmp_path):
    """Word-start markers (Ġ, ▁) are how BPE and SentencePiece vocabularies mark whole words:
    neighbours are looked up and returned without them."""
    from tiny_encoder import default_corpus

    from spacy_bertprod.distill.augment import EmbeddingNeighbours

    corpus = [f"{p} flew to {q} and met {r} in the city" for p, q, r in zip(PEOPLE, PLACES, reversed(PEOPLE))] * 20
    encoder = build_family_encoder(family, tmp_path / family, layers=1, corpus=default_corpus() + corpus)
    neighbours = EmbeddingNeighbours.from_encoder(encoder, n_neighbours=3)
    key = neighbours.key("the")
    assert key is not None
    found = neighbours.neighbours(key)
    assert len(found) == 3
    assert all(word.isalpha() and "\u0120" not in word and "\u2581" not in word for word in found), found


@pytest.mark.parametrize("family", ["mpnet", "deberta-v2", "modernbert", "distilbert", "xlm-roberta"])
def test_bertprod_torch_backend_trains_saves_and_compresses_each_family(family, tmp_path):
    """TorchTransformer.v2 (not only spacy-transformers) trains every family, its saved pipeline
    reloads with the same predictions, and compress takes it."""
    import numpy

    encoder = build_family_encoder(family, tmp_path / "encoder")
    nlp = build_pipeline(encoder)
    history = train(nlp, make_examples(nlp, n=24), steps=6)
    assert all(numpy.isfinite(v) for losses in history for v in losses.values())
    assert history[-1]["transformer"] > 0  # the encoder gets the heads' gradients
    nlp.to_disk(tmp_path / "torch")
    again = spacy.load(tmp_path / "torch")
    for a, b in zip(nlp.pipe(CHECK_TEXTS), again.pipe(CHECK_TEXTS)):
        assert ents(a) == ents(b)
        numpy.testing.assert_allclose(a._.trf_data.hidden, b._.trf_data.hidden, atol=1e-5)
    report = compress_pipeline(
        tmp_path / "torch", tmp_path / "fp32", CompressSettings(quantize="fp32", sample_texts=SAMPLE)
    )
    assert report["transformer"]["source"] == "bertprod" and report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
