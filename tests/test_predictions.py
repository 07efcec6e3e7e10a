"""Every head's predictions are compared (predictions.py): entities, span groups, sentences,
tags, POS, morphology, lemmas and dependencies, by doc and by token."""

import spacy
from spacy.tokens import Doc, Span

from spacy_bertprod.compress.parity import agreement_check, prediction_agreement
from spacy_bertprod.compress.sample import choose_sample
from spacy_bertprod.predictions import doc_layers, layer_agreement, predicted_layers

WORDS = ["Alice", "flew", "to", "Paris", "."]


def _doc(vocab, tags, heads=(1, 1, 1, 2, 1), ents=(("PERSON", 0, 1),), span_label="ACT"):
    doc = Doc(vocab, words=WORDS, tags=list(tags), heads=list(heads), deps=["nsubj", "ROOT", "prep", "pobj", "punct"])
    doc.ents = [Span(doc, start, end, label) for label, start, end in ents]
    doc.spans["sc"] = [Span(doc, 1, 2, span_label)]
    return doc


def test_every_annotated_layer_is_read():
    vocab = spacy.blank("en").vocab
    layers = doc_layers(_doc(vocab, ["NNP", "VBD", "IN", "NNP", "."]))
    assert layers["tags"] == ["NNP", "VBD", "IN", "NNP", "."]
    assert layers["deps"][0] == (1, "nsubj") and layers["ents"] == [(0, 5, "PERSON")]
    assert layers["spans"] == {"sc": [(1, 2, "ACT")]} and layers["sents"] == [0]
    assert "lemmas" not in layers and "morphs" not in layers  # not annotated: not compared
    assert predicted_layers([doc_layers(_doc(vocab, ["NNP"] * 5))]) == ["deps", "ents", "sents", "spans", "tags"]


def test_agreement_counts_docs_and_tokens_per_layer():
    vocab = spacy.blank("en").vocab
    before = [_doc(vocab, ["NNP", "VBD", "IN", "NNP", "."]) for _ in range(4)]
    after = [_doc(vocab, ["NNP", "VBD", "IN", "NNP", "."]) for _ in range(3)]
    after.append(_doc(vocab, ["NN", "VBD", "IN", "NNP", "."], heads=(1, 1, 1, 1, 1), span_label="OTHER"))
    result = layer_agreement(before, after)
    assert result["tags_identical_docs"] == 0.75 and result["tags_identical_tokens"] == 19 / 20
    assert result["deps_identical_tokens"] == 19 / 20 and result["spans_identical_docs"] == 0.75
    assert result["ner_identical_docs"] == 1.0


def test_the_check_names_the_layer_that_changed_most():
    nlp = spacy.blank("en")
    predictions = {"n_docs": 20, "ner_identical_docs": 1.0, "tags_identical_tokens": 0.8, "deps_identical_tokens": 0.95}
    result = agreement_check(predictions, choose_sample(".", {}, ["a"], "--sample dev.spacy"))
    assert not result["passed"] and result["changed_most"] == "tags_identical_tokens"
    assert "changes the tags of 20% of the tokens of the 20 sample docs" in result["message"]
    same = prediction_agreement(nlp, nlp, ["Alice flew to Paris."])
    assert same["n_docs"] == 1 and agreement_check(same, choose_sample(".", {}))["passed"]


def test_entities_are_compared_sentence_by_sentence():
    """One moved entity in a ten-sentence doc changes one sentence in ten, not the doc: the check
    does not depend on how long the user's docs are."""
    vocab = spacy.blank("en").vocab
    words = WORDS * 10
    starts = [i % 5 == 0 for i in range(50)]

    def doc(ents):
        d = Doc(vocab, words=words, sent_starts=starts)
        d.ents = [Span(d, start, start + 1, "PERSON") for start in ents]
        return d

    before, after = [doc(range(0, 50, 5))], [doc([5 * i for i in range(9)] + [48])]
    result = layer_agreement(before, after, ["ner"])
    assert result["ner_identical_docs"] == 0.0 and result["ner_identical_sentences"] == 0.9
    check = agreement_check({"n_docs": 1, **result}, choose_sample(".", {}, ["a"], "--sample dev.spacy"))
    assert abs(check["changed_share"] - 0.1) < 1e-9 and "changed_most" not in check
    only_docs = agreement_check({"n_docs": 1, "ner_identical_docs": 0.0}, choose_sample(".", {}, ["a"], "x"))
    assert only_docs["changed_share"] == 1.0
