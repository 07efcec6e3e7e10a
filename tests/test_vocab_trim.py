"""Vocabulary trimming (`compress --trim-vocab`): the kept wordpieces keep their vectors, every
text still tokenizes, and the compressed pipeline predicts exactly as before on in-domain text."""

import json

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.vocab import trim_vocabulary, unk_share
from spacy_bertprod.transformer_model import get_tokenizer

from conftest import TEXTS

DOMAIN = ["Alice flew to Paris yesterday", "Bob works in Berlin with Carol", "Grace visited Tokyo and met Dave"]


def _torch_parts(trained_bert):
    from spacy_bertprod.source import find_transformer

    nlp = spacy.load(trained_bert)
    source = find_transformer(nlp, "test")
    return source.module, source.tokenizer


def _hidden(module, tokenizer, text):
    import torch

    encoding = tokenizer.tokenizer.encode(text)
    ids = torch.tensor([encoding.ids])
    with torch.no_grad():
        return encoding.tokens, module(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0].numpy()


def test_trimmed_encoder_gives_in_domain_text_the_same_wordpieces_and_vectors(trained_bert):
    module, tokenizer = _torch_parts(trained_bert)
    original_rows = module.get_input_embeddings().weight.shape[0]
    small_module, small_tokenizer, info = trim_vocabulary(module, tokenizer, DOMAIN, DOMAIN)
    assert info["kept"] < info["original_size"] == original_rows
    assert small_module.get_input_embeddings().weight.shape[0] == info["kept"]
    assert module.get_input_embeddings().weight.shape[0] == original_rows  # the original is untouched
    for text in DOMAIN:
        tokens, hidden = _hidden(module, tokenizer, text)
        small_tokens, small_hidden = _hidden(small_module, small_tokenizer, text)
        assert small_tokens == tokens
        numpy.testing.assert_allclose(small_hidden, hidden, atol=1e-5)


def test_out_of_domain_text_still_tokenizes_without_new_unknowns(trained_bert):
    module, tokenizer = _torch_parts(trained_bert)
    _, small_tokenizer, info = trim_vocabulary(module, tokenizer, DOMAIN[:1], DOMAIN)
    others = ["how do i top up my card in lisbon", "microsoft and tesla moved to new york", "zzzz qqq ünïcödé 東京"]
    assert (
        unk_share(small_tokenizer, others)["unk"] == unk_share(tokenizer, others)["unk"] > 0
    )  # 東京: never in the vocabulary
    for text in others:  # dropped pieces fall back to shorter ones: the same characters
        pieces = small_tokenizer.tokenizer.encode(text, add_special_tokens=False).tokens
        assert "".join(p.removeprefix("##") for p in pieces if p != "[UNK]")
    special = json.loads(small_tokenizer.tokenizer_json)["post_processor"]["special_tokens"]
    vocab = json.loads(small_tokenizer.tokenizer_json)["model"]["vocab"]
    assert special["[CLS]"]["ids"] == [vocab["[CLS]"]] and special["[SEP]"]["ids"] == [vocab["[SEP]"]]
    assert small_tokenizer.pad_id == vocab["[PAD]"]
    assert info["check_after"]["wordpieces_per_text"] >= info["check_before"]["wordpieces_per_text"]


def test_compress_with_a_trimmed_vocabulary_predicts_as_before_in_domain(trained_bert, tmp_path):
    full = compress_pipeline(trained_bert, tmp_path / "full", CompressSettings(quantize="fp32", sample_texts=DOMAIN))
    report = compress_pipeline(
        trained_bert, tmp_path / "trim", CompressSettings(quantize="fp32", sample_texts=DOMAIN, vocab_texts=DOMAIN)
    )
    vocabulary = report["vocabulary"]
    assert vocabulary["kept"] < vocabulary["original_size"] and full["vocabulary"] is None
    assert report["sizes_bytes"]["onnx_final"] < full["sizes_bytes"]["onnx_final"]
    reference, trimmed = spacy.load(tmp_path / "full"), spacy.load(tmp_path / "trim")
    assert (
        len(json.loads(get_tokenizer(trimmed.get_pipe("transformer").model).tokenizer_json)["model"]["vocab"])
        == vocabulary["kept"]
    )
    for a, b in zip(reference.pipe(DOMAIN), trimmed.pipe(DOMAIN)):
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == [
            (e.start_char, e.end_char, e.label_) for e in b.ents
        ]
        assert all(abs(a.cats[k] - b.cats[k]) < 1e-5 for k in a.cats)
    assert len(list(trimmed.pipe(TEXTS))) == len(TEXTS)  # any text still runs


def test_trimming_refuses_other_tokenizer_types_and_an_empty_corpus(encoders):
    from spacy_bertprod.backends.torch import load_pretrained
    from spacy_bertprod.compress.vocab import choose_vocabulary

    _, albert = load_pretrained(str(encoders["albert"]))
    with pytest.raises(ValueError, match="supports WordPiece tokenizers.*Unigram"):
        choose_vocabulary(albert, DOMAIN)
    _, bert = load_pretrained(str(encoders["bert"]))
    with pytest.raises(ValueError, match="holds no text"):
        choose_vocabulary(bert, ["   ", ""])
    with pytest.raises(ValueError, match="vocab-min-count"):
        choose_vocabulary(bert, DOMAIN, min_count=0)
