"""Pieces per spaCy token in strided windows: how spacy-curated-transformers pipelines (en_core_web_trf
since spaCy 3.7) feed their encoder, reproduced without torch.

Each non-whitespace token is encoded on its own by the pipeline's piece encoder, with the very
processors spacy-curated-transformers uses (curated-tokenizers' byte BPE, WordPiece, SentencePiece;
a compiled package that needs no torch); a doc is [BOS] + its tokens' pieces + [EOS]; windows of
`window` pieces start every `stride` pieces, and a piece that two windows share gets the mean of
its two vectors. A token is aligned to exactly its own pieces, a whitespace token to none: the
listeners then pool what the original's listeners pooled.
"""

import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy.tokens import Doc
from thinc.types import Ragged

from .errors import Errors, InvalidInput, MissingPackage
from .tokenization import EncodedBatch, Wordpieces

# spacy-curated-transformers' piece encoder architectures -> how we encode a token.
PIECE_ENCODERS = {
    "spacy-curated-transformers.ByteBpeEncoder.v1": "byte_bpe",
    "spacy-curated-transformers.WordpieceEncoder.v1": "wordpiece",
    "spacy-curated-transformers.BertWordpieceEncoder.v1": "bert_wordpiece",
    "spacy-curated-transformers.SentencepieceEncoder.v1": "sentencepiece",
    "spacy-curated-transformers.XlmrSentencepieceEncoder.v1": "xlmr_sentencepiece",
    "spacy-curated-transformers.CamembertSentencepieceEncoder.v1": "camembert_sentencepiece",
}
# Token texts -> piece ids kept per encoder (a text's pieces never depend on the rest of the doc).
CACHE_SIZE = 200_000


def _processors():
    try:
        import curated_tokenizers
    except ImportError as err:
        raise MissingPackage(
            Errors.E003.format(
                what="A pipeline converted from spacy-curated-transformers",
                package="curated-tokenizers",
                install="'spacy_bertprod[curated]'",
            )
        ) from err
    return curated_tokenizers


@dataclass
class PieceSettings:
    """What spacy-curated-transformers keeps in its piece encoder's attrs besides the processor."""

    bos_piece: str = ""
    eos_piece: str = ""
    unk_piece: str = ""
    lowercase: bool = False
    strip_accents: bool = False


class TokenPieceEncoder:
    """One spaCy token at a time -> piece ids, exactly as spacy-curated-transformers' encoder `kind`."""

    def __init__(self, kind: str, processor_data: bytes, settings: PieceSettings):
        if kind not in PIECE_ENCODERS.values():
            raise InvalidInput(f"Unknown piece encoder kind '{kind}'; known: {sorted(PIECE_ENCODERS.values())}.")
        self.kind, self.processor_data, self.settings = kind, processor_data, settings
        self.processor = _load_processor(kind, processor_data)
        self.bos_id, self.eos_id, self.unk_id = self._special_ids()
        self._cache: Dict[str, List[int]] = {}

    def __reduce__(self):
        return (TokenPieceEncoder, (self.kind, self.processor_data, self.settings))

    def _special_ids(self) -> Tuple[int, int, Optional[int]]:
        p, s = self.processor, self.settings
        if self.kind == "byte_bpe":
            ids = [p.piece_id(piece) for piece in (s.bos_piece, s.eos_piece, s.unk_piece)]
        elif self.kind.endswith("wordpiece"):
            ids = [p.get_initial(piece) for piece in (s.bos_piece, s.eos_piece, s.unk_piece)]
        else:
            return int(self.adapt([p.bos_id()])[0]), int(self.adapt([p.eos_id()])[0]), None
        if any(i is None or i < 0 for i in ids):
            raise InvalidInput(
                f"The {self.kind} vocabulary lacks one of its special pieces {[s.bos_piece, s.eos_piece, s.unk_piece]}."
            )
        return tuple(int(i) for i in ids)

    def adapt(self, ids) -> numpy.ndarray:
        """SentencePiece ids -> the fairseq ids XLM-R and CamemBERT were trained with (curated's adapters)."""
        ids = numpy.asarray(ids, dtype="int64")
        if self.kind == "xlmr_sentencepiece":
            return numpy.select([ids == 0, ids == 1, ids == 2], [3, 0, 2], ids + 1)
        if self.kind == "camembert_sentencepiece":
            return numpy.where(ids == 0, 3, ids + 4)
        return ids

    def token_text(self, doc: Doc, i: int) -> str:
        """The text a token is encoded from: byte BPE keeps the whitespace before it (GPT-2/RoBERTa)."""
        token = doc[i]
        if self.kind == "byte_bpe":
            return (doc[i - 1].whitespace_ if i > 0 else "") + token.text
        if self.kind.endswith("wordpiece") and self.settings.lowercase:
            return token.lower_
        return token.text

    def encode_text(self, text: str) -> List[int]:
        ids = self._cache.get(text)
        if ids is None:
            ids = self._encode(text)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = ids
        return ids

    def _encode(self, text: str) -> List[int]:
        p = self.processor
        if self.kind == "byte_bpe":
            return list(p.encode_as_ids(text))
        if self.kind.endswith("wordpiece"):
            if self.settings.strip_accents:
                text = _strip_accents(text)
            parts = _bert_split(text) if self.kind == "bert_wordpiece" else [text]
            return [self.unk_id if i == -1 else i for part in parts for i in p.encode(part)[0]]
        return self.adapt(p.encode_as_ids(text)).tolist()

    def encode_doc(self, doc: Doc) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """[BOS] + every token's pieces + [EOS], and each token's number of pieces (0 for whitespace)."""
        ids, lengths = [self.bos_id], numpy.zeros(len(doc), dtype="int32")
        for i, token in enumerate(doc):
            if not token.is_space:
                pieces = self.encode_text(self.token_text(doc, i))
                ids.extend(pieces)
                lengths[i] = len(pieces)
        ids.append(self.eos_id)
        return numpy.asarray(ids, dtype="int64"), lengths

    def to_dict(self) -> Dict:
        return {"kind": self.kind, "processor": self.processor_data, "settings": vars(self.settings)}

    @classmethod
    def from_dict(cls, msg: Dict) -> "TokenPieceEncoder":
        return cls(msg["kind"], msg["processor"], PieceSettings(**msg["settings"]))


def _load_processor(kind: str, data: bytes):
    ct = _processors()
    if kind == "byte_bpe":
        msg = srsly.msgpack_loads(data)
        return ct.ByteBPEProcessor(msg["vocab"], msg["merges"])
    if kind.endswith("wordpiece"):
        return ct.WordPieceProcessor(data.decode("utf8").split("\n"))
    return ct.SentencePieceProcessor.from_protobuf(data)


def processor_bytes(kind: str, processor) -> bytes:
    """A curated-tokenizers processor as bytes (as spacy-curated-transformers serialises it)."""
    if kind == "byte_bpe":
        return srsly.msgpack_dumps({"merges": processor.merges, "vocab": processor.vocab})
    if kind.endswith("wordpiece"):
        return "\n".join(processor.to_list()).encode("utf8")
    return processor.to_protobuf()


def _bert_split(token: str) -> List[str]:
    """Split on punctuation as BERT's basic tokenizer (spacy-curated-transformers' _bert_preprocess)."""
    parts: List[str] = []
    in_word = False
    for char in token:
        if _is_bert_punctuation(char):
            parts.append(char)
            in_word = False
        elif in_word:
            parts[-1] += char
        else:
            parts.append(char)
            in_word = True
    return parts


def _is_bert_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class PieceWindowTokenizer:
    """Docs -> strided windows of token pieces; `window` is the longest sequence the encoder sees."""

    def __init__(self, encoder: TokenPieceEncoder, *, window: int, stride: int, pad_id: int):
        if not (window // 2 <= stride <= window) or window < 2:
            raise InvalidInput(f"The piece windows need window // 2 <= stride <= window, got {window} and {stride}.")
        self.encoder, self.max_length, self.stride, self.pad_id = encoder, int(window), int(stride), int(pad_id)

    def __reduce__(self):
        return (_rebuild_piece_tokenizer, (self.to_bytes(),))

    # The windows cover whole docs: span getters do not apply.
    whole_docs = True

    def encode_batch(self, docs: Sequence[Doc]) -> EncodedBatch:
        """Each doc's windows (rows of its pieces, BOS first, EOS last) and its token -> row alignment."""
        windows, doc_n_seqs, aligns = [], [], []
        for doc in docs:
            ids, lengths = self.encoder.encode_doc(doc)
            if not lengths.any():  # nothing but whitespace: every token pools to zeros, as in curated
                doc_n_seqs.append(0)
                aligns.append(Ragged(numpy.zeros((0,), dtype="int32"), lengths))
                continue
            starts = range(0, len(ids), self.stride)
            windows.extend(Wordpieces(w, numpy.zeros_like(w), numpy.zeros_like(w)) for w in _windows(ids, starts, self))
            doc_n_seqs.append(len(starts))
            aligns.append(Ragged(numpy.arange(1, 1 + int(lengths.sum()), dtype="int32"), lengths))
        return EncodedBatch(windows, doc_n_seqs, aligns, stride=self.stride)

    def encode_spans(self, spans) -> List[List[Wordpieces]]:
        """Per span (as its own doc), its windows: calibration and parity batches."""
        batch = self.encode_batch([span.as_doc() for span in spans])
        output, start = [], 0
        for n in batch.doc_n_seqs:
            output.append(batch.sequences[start : start + n])
            start += n
        return output

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(
            {"encoder": self.encoder.to_dict(), "window": self.max_length, "stride": self.stride, "pad_id": self.pad_id}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "PieceWindowTokenizer":
        msg = srsly.msgpack_loads(data)
        encoder = TokenPieceEncoder.from_dict(msg["encoder"])
        return cls(encoder, window=msg["window"], stride=msg["stride"], pad_id=msg["pad_id"])


def _windows(ids: numpy.ndarray, starts, tokenizer: PieceWindowTokenizer) -> List[numpy.ndarray]:
    return [ids[s : s + tokenizer.max_length] for s in starts]


def _rebuild_piece_tokenizer(data: bytes) -> PieceWindowTokenizer:
    return PieceWindowTokenizer.from_bytes(data)
