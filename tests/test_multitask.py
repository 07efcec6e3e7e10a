"""A stock spacy-transformers pipeline with a tagger, a parser and NER listening to one transformer:
compress keeps every head's predictions, and its parity check and `invariance` compare tags and
dependencies too, not only entities."""

import random

import pytest
import spacy
from spacy.training import Example

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.parity import batch_invariance

from conftest import PEOPLE, PLACES, listener_block, train

FILLER = ["yesterday", "today", "again", "twice"]


def _examples(nlp, n=48, seed=0):
    """'PERSON flew to PLACE [filler]' with tags, a dependency tree and entities."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        verb, prep = ("flew", "to") if rng.random() < 0.5 else ("works", "in")
        extra = rng.sample(FILLER, rng.randint(0, 2))
        words = [person, verb, prep, place, *extra]
        annotations = {
            "words": words,
            "tags": ["NNP", "VBD" if verb == "flew" else "VBZ", "IN", "NNP"] + ["RB"] * len(extra),
            "heads": [1, 1, 1, 2] + [1] * len(extra),
            "deps": ["nsubj", "ROOT", "prep", "pobj"] + ["advmod"] * len(extra),
            "entities": ["U-PERSON", "O", "O", "U-GPE"] + ["O"] * len(extra),
        }
        doc = nlp.make_doc(" ".join(words))
        examples.append(Example.from_dict(doc, annotations))
    return examples


@pytest.fixture(scope="module")
def multitask(encoders, tmp_path_factory):
    import spacy_transformers  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": str(encoders["bert"]),
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12},
                "tokenizer_config": {"use_fast": True},
            }
        },
    )
    tok2vec = listener_block("spacy-transformers.TransformerListener.v1")
    nlp.add_pipe("tagger", config={"model": {"tok2vec": tok2vec}})
    nlp.add_pipe("parser", config={"model": {"tok2vec": tok2vec, "hidden_width": 32}})
    nlp.add_pipe("ner", config={"model": {"tok2vec": tok2vec, "hidden_width": 32}})
    examples = _examples(nlp)
    train(nlp, examples, steps=30)
    root = tmp_path_factory.mktemp("multitask")
    nlp.to_disk(root / "stock")
    texts = [eg.reference.text for eg in _examples(nlp, n=40, seed=1)]
    out = {}
    for quantize in ("fp32", "int8"):
        settings = CompressSettings(quantize=quantize, sample_texts=texts, sample_source="test texts")
        out[quantize] = compress_pipeline(root / "stock", root / quantize, settings)
    return root, out, texts


def test_compress_checks_and_keeps_tags_and_dependencies(multitask):
    root, reports, texts = multitask
    fp32 = reports["fp32"]["parity"]["predictions"]
    for key in ("tags_identical_tokens", "deps_identical_tokens", "ner_identical_docs", "sents_identical_docs"):
        assert fp32[key] == 1.0, key
    int8 = reports["int8"]["parity"]["predictions"]
    assert {"tags_identical_tokens", "deps_identical_tokens"} <= set(int8)
    original, compressed = spacy.load(root / "stock"), spacy.load(root / "fp32")
    for a, b in zip(original.pipe(texts), compressed.pipe(texts)):
        assert [t.tag_ for t in a] == [t.tag_ for t in b]
        assert [(t.head.i, t.dep_) for t in a] == [(t.head.i, t.dep_) for t in b]


def test_invariance_compares_every_head(multitask):
    root, _, texts = multitask
    nlp = spacy.load(root / "int8")
    result = batch_invariance(nlp, texts + ["Alice", "", "Bob works in Tokyo today " * 8], batch_sizes=(1, 7))
    assert result["identical_all"] == 1.0
