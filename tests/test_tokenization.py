"""Wordpiece alignment: identical to spacy-transformers', and nothing is ever truncated."""
import numpy
import pytest
import spacy

from spacy_bertprod.span_getters import configure_strided_spans
from spacy_bertprod.tokenization import WordpieceTokenizer, align_wordpieces, char_to_token

TRICKY = [
    "Hello world!",
    "I can't believe it's not butter... Really?!",
    "New York-based co-founders (U.S.A.) e-mail: a.b@c.de",
    "  leading and   multiple   spaces\n\nnewlines\t tabs ",
    "emoji 😀👍🏽 and CJK 東京 and RTL مرحبا and combining é and zwj 👨‍👩‍👧",
    "control \x00 chars \x07 here",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def hf_and_ours(encoders):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(encoders["bert"], use_fast=True)
    ours = WordpieceTokenizer(hf.backend_tokenizer.to_str(), max_length=64, pad_id=hf.pad_token_id)
    return hf, ours


@pytest.mark.parametrize("text", TRICKY)
def test_alignment_matches_spacy_transformers(hf_and_ours, text):
    from spacy_transformers.align import get_alignment_via_offset_mapping

    hf, ours = hf_and_ours
    nlp = spacy.blank("en")
    doc = nlp(text)
    spans = configure_strided_spans(window=4, stride=3)([doc])[0]
    encoded = hf([s.text for s in spans], add_special_tokens=True, return_offsets_mapping=True, padding="longest", return_tensors="np")
    expected = get_alignment_via_offset_mapping(spans, encoded["offset_mapping"])
    c2t = char_to_token(doc)
    toks, wps, offset = [], [], 0
    pad_len = encoded["input_ids"].shape[1]
    for span, pieces in zip(spans, ours.encode_spans(spans)):
        assert len(pieces) == 1
        t, w = align_wordpieces(c2t, span, pieces, offset)
        toks.append(t)
        wps.append(w)
        offset += pad_len  # spacy-transformers numbers wordpieces in the padded batch
    toks, wps = numpy.concatenate(toks), numpy.concatenate(wps)
    ours_by_token = [sorted(wps[toks == i].tolist()) for i in range(len(doc))]
    lengths = expected.lengths.tolist()
    flat = expected.dataXd.tolist()
    theirs_by_token = []
    for n in lengths:
        theirs_by_token.append(sorted(flat[:n]))
        flat = flat[n:]
    assert ours_by_token == theirs_by_token


def test_overlong_span_is_split_not_truncated(hf_and_ours):
    _, ours = hf_and_ours
    nlp = spacy.blank("en")
    doc = nlp("alice visited paris " * 100 + "end")  # one window of 301 tokens, max_length 64
    pieces = ours.encode_spans([doc[:]])[0]
    assert len(pieces) > 1
    assert all(len(p.ids) <= ours.max_length for p in pieces)
    plain = ours.tokenizer.encode(doc.text, add_special_tokens=False)
    n_content = sum(len(p.ids) - ours.n_special for p in pieces)
    assert n_content == len(plain.ids)
    c2t = char_to_token(doc)
    tokens, _ = align_wordpieces(c2t, doc[:], pieces, 0)
    assert set(tokens.tolist()) == set(range(len(doc)))


def test_giant_token_still_gets_wordpieces(hf_and_ours):
    _, ours = hf_and_ours
    doc = spacy.blank("en")("x" * 10000 + " end")
    pieces = ours.encode_spans([doc[:]])[0]
    tokens, _ = align_wordpieces(char_to_token(doc), doc[:], pieces, 0)
    assert set(tokens.tolist()) == {0, 1}


def test_char_to_token_claims_trailing_space():
    doc = spacy.blank("en")("ab  cd")
    c2t = char_to_token(doc)
    # "ab" owns 0,1 and its trailing space 2; the second space is a whitespace token.
    assert c2t[:3].tolist() == [0, 0, 0]
    assert c2t[4:6].tolist() == [2, 2]


def test_tokenizer_pickles(hf_and_ours):
    import pickle

    _, ours = hf_and_ours
    again = pickle.loads(pickle.dumps(ours))
    doc = spacy.blank("en")("hello world")
    assert [p.ids.tolist() for p in again.encode_spans([doc[:]])[0]] == [p.ids.tolist() for p in ours.encode_spans([doc[:]])[0]]


def test_bad_stride_is_refused():
    with pytest.raises(ValueError, match="stride"):
        configure_strided_spans(window=8, stride=16)
