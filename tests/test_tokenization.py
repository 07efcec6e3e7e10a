"""Wordpiece alignment: identical to spacy-transformers', and nothing is ever truncated."""

import pytest
import spacy

from spacy_bertprod.span_getters import configure_strided_spans
from spacy_bertprod.tokenization import WordpieceTokenizer, encode_docs

TRICKY = [
    "Hello world!",
    "I can't believe it's not butter... Really?!",
    "New York-based co-founders (U.S.A.) e-mail: a.b@c.de",
    "  leading and   multiple   spaces\n\nnewlines\t tabs ",
    "emoji 😀👍🏽 and CJK 東京 and RTL مرحبا and combining é and zwj 👨‍👩‍👧",
    "control \x00 chars \x07 here",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ab  cd",
    "\u200b\u200b zero width  ",
]


def tokens_by_wordpiece(pieces, align, pad_len):
    """Per token, its wordpieces numbered as in a batch padded to pad_len (as spacy-transformers
    numbers them; encode_docs numbers a doc's sequences back to back)."""
    position = []
    for row, piece in enumerate(pieces):
        position.extend(row * pad_len + i for i in range(len(piece.ids)))
    flat, by_token = align.dataXd.tolist(), []
    for n in align.lengths.tolist():
        by_token.append(sorted(position[i] for i in flat[:n]))
        flat = flat[n:]
    return by_token


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
    encoded = hf(
        [s.text for s in spans],
        add_special_tokens=True,
        return_offsets_mapping=True,
        padding="longest",
        return_tensors="np",
    )
    expected = get_alignment_via_offset_mapping(spans, encoded["offset_mapping"])
    batch = encode_docs(ours, [doc], [spans])
    assert batch.doc_n_seqs == [len(spans)]  # no window was split
    ours_by_token = tokens_by_wordpiece(batch.sequences, batch.aligns[0], encoded["input_ids"].shape[1])
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
    batch = encode_docs(ours, [doc], [[doc[:]]])
    assert [p.ids.tolist() for p in batch.sequences] == [p.ids.tolist() for p in pieces]
    assert (batch.aligns[0].lengths > 0).all()  # every token keeps its wordpieces


def test_giant_token_still_gets_wordpieces(hf_and_ours):
    _, ours = hf_and_ours
    doc = spacy.blank("en")("x" * 10000 + " end")
    batch = encode_docs(ours, [doc], [[doc[:]]])
    assert len(doc) == 2 and (batch.aligns[0].lengths > 0).all()


def test_batch_encoding_equals_each_doc_alone(hf_and_ours):
    """Docs share one character and token axis in encode_docs: nothing may leak between them."""
    _, ours = hf_and_ours
    nlp = spacy.blank("en")
    texts = TRICKY + ["", " ", "x" * 300 + " end", "alice visited paris " * 40 + "end"]
    docs = [nlp(t) for t in texts]
    getter = configure_strided_spans(window=5, stride=3)
    spans = [[s for s in doc_spans if len(s)] for doc_spans in getter(docs)]
    together = encode_docs(ours, docs, spans)
    start = 0
    for doc, doc_spans, n_seqs, align in zip(docs, spans, together.doc_n_seqs, together.aligns):
        alone = encode_docs(ours, [doc], [doc_spans])
        mine = together.sequences[start : start + n_seqs]
        start += n_seqs
        assert alone.doc_n_seqs == [n_seqs]
        assert [p.ids.tolist() for p in mine] == [p.ids.tolist() for p in alone.sequences]
        assert [p.starts.tolist() for p in mine] == [p.starts.tolist() for p in alone.sequences]
        assert align.dataXd.tolist() == alone.aligns[0].dataXd.tolist()
        assert align.lengths.tolist() == alone.aligns[0].lengths.tolist()
    assert start == len(together.sequences)


def test_tokenizer_pickles(hf_and_ours):
    import pickle

    _, ours = hf_and_ours
    again = pickle.loads(pickle.dumps(ours))
    doc = spacy.blank("en")("hello world")
    assert [p.ids.tolist() for p in again.encode_spans([doc[:]])[0]] == [
        p.ids.tolist() for p in ours.encode_spans([doc[:]])[0]
    ]


def test_bad_stride_is_refused():
    with pytest.raises(ValueError, match="stride"):
        configure_strided_spans(window=8, stride=16)
