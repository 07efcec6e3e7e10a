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


@pytest.mark.parametrize("quantize", ["fp32", "int8"])
def test_compress_with_a_trimmed_vocabulary_predicts_as_before_in_domain(trained_bert, tmp_path, quantize):
    """int8 too: the rows that set the embedding's int8 range are kept, so the kept rows quantise
    exactly as before and in-domain hidden states are the same, not just close."""
    full = compress_pipeline(trained_bert, tmp_path / "full", CompressSettings(quantize=quantize, sample_texts=DOMAIN))
    report = compress_pipeline(
        trained_bert, tmp_path / "trim", CompressSettings(quantize=quantize, sample_texts=DOMAIN, vocab_texts=DOMAIN)
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
        numpy.testing.assert_allclose(a._.trf_data.hidden, b._.trf_data.hidden, atol=1e-5)
    assert len(list(trimmed.pipe(TEXTS))) == len(TEXTS)  # any text still runs


def test_trimming_refuses_other_tokenizer_types_and_an_empty_corpus(encoders):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from spacy_bertprod.backends.hf_folder import load_pretrained
    from spacy_bertprod.compress.vocab import choose_vocabulary
    from spacy_bertprod.tokenization import WordpieceTokenizer

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "alice": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    other = WordpieceTokenizer(word_level.to_str(), max_length=16, pad_id=0)
    with pytest.raises(ValueError, match="supports WordPiece, BPE and Unigram tokenizers.*WordLevel"):
        choose_vocabulary(other, DOMAIN)
    _, bert = load_pretrained(str(encoders["bert"]))
    with pytest.raises(ValueError, match="holds no text"):
        choose_vocabulary(bert, ["   ", ""])
    with pytest.raises(ValueError, match="vocab-min-count"):
        choose_vocabulary(bert, DOMAIN, min_count=0)


# Byte-level BPE (RoBERTa, ModernBERT) and SentencePiece/Unigram (XLM-R, DeBERTa-v3).
OTHER_KINDS = ["roberta", "modernbert", "xlm-roberta", "deberta-v2"]
FAR = ["how do i top up my card in lisbon", "zzzz qqq ünïcödé 東京 🙂", "Приве́т мир", "x" * 50]


@pytest.mark.parametrize("family", OTHER_KINDS)
def test_bpe_and_unigram_trimming_keep_in_domain_pieces_and_vectors(family, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from tiny_encoder import build_family_encoder

    from spacy_bertprod.backends.hf_folder import load_pretrained

    corpus = DOMAIN + TEXTS[:4] + FAR * 3  # the tokenizer knows far more than the domain uses
    module, tokenizer = load_pretrained(str(build_family_encoder(family, tmp_path / family, layers=1, corpus=corpus)))
    small_module, small_tokenizer, info = trim_vocabulary(module, tokenizer, DOMAIN, DOMAIN)
    kind = json.loads(tokenizer.tokenizer_json)["model"]["type"]
    assert info["tokenizer_model"] == kind in ("BPE", "Unigram")
    assert info["kept"] < info["original_size"]
    assert small_module.get_input_embeddings().weight.shape[0] == info["kept"]
    for text in DOMAIN:
        tokens, hidden = _hidden(module, tokenizer, text)
        small_tokens, small_hidden = _hidden(small_module, small_tokenizer, text)
        assert small_tokens == tokens
        numpy.testing.assert_allclose(small_hidden, hidden, atol=1e-5)
    # Everything still tokenizes, to the same characters; no new unknowns.
    assert unk_share(small_tokenizer, FAR)["unk"] == unk_share(tokenizer, FAR)["unk"]
    for text in FAR:
        before = tokenizer.tokenizer.encode(text, add_special_tokens=False)
        after = small_tokenizer.tokenizer.encode(text, add_special_tokens=False)
        assert small_tokenizer.tokenizer.decode(after.ids) == tokenizer.tokenizer.decode(before.ids)
        assert len(after.ids) >= len(before.ids)
    data = json.loads(small_tokenizer.tokenizer_json)
    if kind == "BPE":  # every merge left has its inputs and its result in the vocabulary
        vocab = data["model"]["vocab"]
        for merge in data["model"]["merges"]:
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            assert left in vocab and right in vocab and left + right in vocab
    else:  # scores travel with their pieces
        scores = dict((p, s) for p, s in json.loads(tokenizer.tokenizer_json)["model"]["vocab"])
        assert all(scores[piece] == score for piece, score in data["model"]["vocab"])


def test_corpus_characters_rule_drops_unused_scripts_and_counts_their_unknowns(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from tiny_encoder import build_family_encoder

    from spacy_bertprod.backends.hf_folder import load_pretrained

    corpus = DOMAIN + FAR * 3 + ["東京 大阪 京都 ソウル 서울 부산 مرحبا بالعالم"] * 3
    module, tokenizer = load_pretrained(
        str(build_family_encoder("xlm-roberta", tmp_path / "x", layers=1, corpus=corpus))
    )
    _, every, all_info = trim_vocabulary(module, tokenizer, DOMAIN, DOMAIN)
    small_module, small, info = trim_vocabulary(module, tokenizer, DOMAIN, DOMAIN, characters="corpus")
    assert info["characters"] == "corpus" and info["kept"] < all_info["kept"]
    for text in DOMAIN:
        tokens, hidden = _hidden(module, tokenizer, text)
        small_tokens, small_hidden = _hidden(small_module, small, text)
        assert small_tokens == tokens
        numpy.testing.assert_allclose(small_hidden, hidden, atol=1e-5)
    foreign = ["東京 서울 مرحبا"]
    assert unk_share(every, foreign)["unk"] == unk_share(tokenizer, foreign)["unk"]
    assert unk_share(small, foreign)["unk"] > unk_share(tokenizer, foreign)["unk"]
    with pytest.raises(ValueError, match="--vocab-characters"):
        trim_vocabulary(module, tokenizer, DOMAIN, DOMAIN, characters="some")
