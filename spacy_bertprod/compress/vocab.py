"""Vocabulary trimming: keep the wordpieces a domain corpus uses, drop the rest of the embedding.

Half of MiniLM's parameters are its 30,522-row word embedding, and ~192M of xlm-roberta-base's
~278M are its 250,002 rows: a domain uses a fraction of them. We keep every piece the corpus
produces (at least `min_count` times), every special token, and what lets any text still
tokenize, per tokenizer model:
- WordPiece (BERT, MPNet, ELECTRA, DistilBERT): every single character with and without the
  continuation prefix; a word whose long pieces were dropped falls back to shorter ones
  (greedy longest-match).
- BPE (byte-level: RoBERTa, ModernBERT, DeBERTa v1; also character-level BPE): every single-symbol
  token (the 256 byte symbols of byte-level BPE, so nothing ever becomes unknown), every token a
  kept token is merged from, recursively, and exactly the merges whose inputs and result are all
  kept. In-domain words get the same pieces: every merge their tokenization applied is kept, and
  removing merges that did not apply cannot change which of the remaining ones applies first.
- Unigram (SentencePiece: XLM-R, CamemBERT, DeBERTa-v3, ALBERT): every single-character piece
  (with and without the word-start marker) and the byte-fallback pieces, scores unchanged. The
  original best segmentation of an in-domain text uses kept pieces only, so removing other pieces
  only removes alternatives it already beat.
Only characters the original vocabulary never had become unknown. `characters="corpus"` keeps
instead only the single characters the corpus (or plain ASCII) uses: a multilingual vocabulary's
tens of thousands of single CJK/Hangul/... pieces go, and text in scripts the domain never uses
then becomes unknown pieces (counted on the sample in the report); in-domain text is unchanged.
The two rows holding the embedding's smallest and largest weight are kept too, so int8
quantises every kept row exactly as it did untrimmed. Ids are renumbered in their
original order; the tokenizer (`tokenizer.json`) and the encoder's embedding are rewritten
together, so the pair stays consistent.
"""

import copy
import json
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy

from ..errors import InvalidInput
from ..tokenization import WordpieceTokenizer


def _special_ids(data: Dict[str, Any]) -> List[int]:
    return [int(t["id"]) for t in data.get("added_tokens", [])]


def _remap_post_processor(node: Any, remap: Dict[int, int]) -> None:
    """Special-token ids inside TemplateProcessing / BertProcessing / Sequence post-processors."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TemplateProcessing":
        for special in node.get("special_tokens", {}).values():
            special["ids"] = [remap[int(i)] for i in special["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            token, old = node[key]
            node[key] = [token, remap[int(old)]]
    for child in node.get("processors", []) or []:
        _remap_post_processor(child, remap)


TRIMMABLE = ("WordPiece", "BPE", "Unigram")


def _pieces(model: Dict[str, Any]) -> Dict[str, int]:
    """token -> id for any of the three models (Unigram's vocab is a list of [piece, score])."""
    if model["type"] == "Unigram":
        return {piece: i for i, (piece, _) in enumerate(model["vocab"])}
    return dict(model["vocab"])


def _merge_pairs(model: Dict[str, Any]) -> List[Tuple[str, str]]:
    """BPE merges as (left, right), whichever way tokenizer.json writes them."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model.get("merges", [])]


CHARACTER_RULES = ("all", "corpus")


def _always_kept(model: Dict[str, Any], vocab: Dict[str, int], seen: Optional[set] = None) -> set:
    """The pieces that let any text still tokenize (see the module docstring); with `seen` (the
    corpus's characters), only the single characters in it or in ASCII."""
    found = _single_characters(model, vocab)
    if seen is None:
        return set(found.values())
    return {i for char, i in found.items() if char in seen or char.isascii()}


def _single_characters(model: Dict[str, Any], vocab: Dict[str, int]) -> Dict[str, int]:
    """piece -> id of every piece that stands for one character (or byte) of text."""
    found = {}
    for tok, i in vocab.items():
        char = _as_character(model, tok)
        if char is not None:
            found[tok] = i
    return found


def _as_character(model: Dict[str, Any], tok: str) -> Optional[str]:
    kind = model["type"]
    if kind == "WordPiece":
        bare = tok.removeprefix(model.get("continuing_subword_prefix", "##"))
    elif kind == "BPE":
        bare = tok.removeprefix(model.get("continuing_subword_prefix") or "")
        bare = bare.removesuffix(model.get("end_of_word_suffix") or "")
        # Single symbols are kept whatever the rule: byte-level BPE has only its 256 byte symbols.
        return "\x00" if len(bare) <= 1 else None
    else:
        if len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):  # byte fallback
            return "\x00"
        bare = tok.removeprefix("\u2581")  # SentencePiece's word-start marker
    if len(bare) > 1:
        return None
    return bare or " "


def _merge_closure(model: Dict[str, Any], vocab: Dict[str, int], keep: set) -> set:
    """`keep` plus, recursively, the two tokens every kept BPE token is merged from."""
    made_from: Dict[str, Tuple[str, str]] = {}
    for left, right in _merge_pairs(model):
        made_from.setdefault(left + right, (left, right))
    names = {i: tok for tok, i in vocab.items()}
    todo = [names[i] for i in keep if i in names]
    closed = set(keep)
    while todo:
        parts = made_from.get(todo.pop())
        for part in parts or ():
            if part in vocab and vocab[part] not in closed:
                closed.add(vocab[part])
                todo.append(part)
    return closed


def _unk_id(model: Dict[str, Any], vocab: Dict[str, int]) -> List[int]:
    if model["type"] == "Unigram":
        return [int(model["unk_id"])] if model.get("unk_id") is not None else []
    unk = model.get("unk_token")
    return [vocab[unk]] if unk in vocab else []


def choose_vocabulary(
    tokenizer: WordpieceTokenizer, texts: Sequence[str], min_count: int = 1, characters: str = "all"
) -> Tuple[numpy.ndarray, Dict[str, Any]]:
    """The ids to keep (sorted) and what was counted."""
    data = json.loads(tokenizer.tokenizer_json)
    model = data.get("model", {})
    if model.get("type") not in TRIMMABLE:
        raise InvalidInput(
            f"Vocabulary trimming supports WordPiece, BPE and Unigram tokenizers; this encoder's tokenizer is "
            f"{model.get('type')}. Compress without --trim-vocab."
        )
    if min_count < 1:
        raise InvalidInput(f"--vocab-min-count must be at least 1, got {min_count}.")
    if characters not in CHARACTER_RULES:
        raise InvalidInput(f"--vocab-characters must be one of {', '.join(CHARACTER_RULES)}, not {characters!r}.")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise InvalidInput("The --trim-vocab corpus holds no text: give the training data (or more in-domain text).")
    vocab = _pieces(model)
    counts: Counter = Counter()
    for encoding in tokenizer.tokenizer.encode_batch(texts, add_special_tokens=False):
        counts.update(encoding.ids)
    used = {i for i, n in counts.items() if n >= min_count}
    seen = {char for text in texts for char in text.lower() + text} if characters == "corpus" else None
    single = _always_kept(model, vocab, seen)
    specials = set(_special_ids(data)) | set(_unk_id(model, vocab)) | {tokenizer.pad_id}
    kept = used | single | specials
    if model["type"] == "BPE":
        kept = _merge_closure(model, vocab, kept)
    keep = numpy.asarray(sorted(kept), dtype="int64")
    info = {
        "tokenizer_model": model["type"],
        "corpus_texts": len(texts),
        "corpus_wordpieces": int(sum(counts.values())),
        "min_count": min_count,
        "original_size": len(vocab),
        "kept": int(len(keep)),
        "kept_from_corpus": len(used),
        "kept_single_characters": len(single),
        "characters": characters,
        "kept_special": len(specials),
    }
    return keep, info


def trimmed_tokenizer(tokenizer: WordpieceTokenizer, keep: numpy.ndarray) -> WordpieceTokenizer:
    """The same tokenizer over the kept wordpieces only, renumbered 0..len(keep)-1 in order."""
    data = json.loads(tokenizer.tokenizer_json)
    remap = {int(old): new for new, old in enumerate(keep.tolist())}
    model = data["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [entry for i, entry in enumerate(model["vocab"]) if i in remap]
        if model.get("unk_id") is not None:
            model["unk_id"] = remap[int(model["unk_id"])]
    else:
        model["vocab"] = {
            tok: remap[i] for tok, i in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if i in remap
        }
    if model["type"] == "BPE":
        names = set(model["vocab"])
        model["merges"] = [
            m for m, (a, b) in zip(model["merges"], _merge_pairs(model)) if a in names and b in names and a + b in names
        ]
    for added in data.get("added_tokens", []):
        added["id"] = remap[int(added["id"])]
    _remap_post_processor(data.get("post_processor"), remap)
    if data.get("padding"):
        data["padding"]["pad_id"] = remap[int(data["padding"]["pad_id"])]
    return WordpieceTokenizer(
        json.dumps(data, ensure_ascii=False), max_length=tokenizer.max_length, pad_id=remap[tokenizer.pad_id]
    )


def with_scale_anchors(module, keep: numpy.ndarray) -> Tuple[numpy.ndarray, int]:
    """`keep` plus the embedding rows that hold its smallest and largest weight.

    int8 quantises the embedding with one scale (and zero point) from the whole tensor's range:
    keeping the two rows that set that range gives every kept row exactly the int8 values it had
    untrimmed, so in-domain text gets the same int8 hidden states, not just the same fp32 ones.
    """
    weight = module.get_input_embeddings().weight.detach()
    flat = weight.reshape(-1)
    width = weight.shape[1]
    rows = {int(flat.argmin()) // width, int(flat.argmax()) // width}
    added = sorted(rows - set(keep.tolist()))
    if not added:
        return keep, 0
    return numpy.asarray(sorted(set(keep.tolist()) | rows), dtype="int64"), len(added)


def trimmed_encoder(module, keep: numpy.ndarray):
    """A copy of the HF encoder whose word embedding holds only the kept rows."""
    import torch

    module = copy.deepcopy(module)
    old = module.get_input_embeddings()
    rows = torch.as_tensor(keep, dtype=torch.long)
    new = torch.nn.Embedding(len(keep), old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[rows])
    if old.padding_idx is not None:
        where = numpy.flatnonzero(keep == old.padding_idx)
        new.padding_idx = int(where[0]) if len(where) else None
    module.set_input_embeddings(new)
    module.config.vocab_size = len(keep)
    return module


def unk_share(tokenizer: WordpieceTokenizer, texts: Sequence[str]) -> Dict[str, float]:
    """[UNK] wordpieces (count and share) and wordpieces per text, on `texts`."""
    model = json.loads(tokenizer.tokenizer_json)["model"]
    unk = _unk_id(model, _pieces(model))
    ids = [e.ids for e in tokenizer.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    total = sum(len(x) for x in ids)
    unknown = sum(x.count(unk[0]) for x in ids) if unk else 0
    return {"unk": unknown, "unk_share": unknown / max(total, 1), "wordpieces_per_text": total / max(len(ids), 1)}


def trim_vocabulary(
    module,
    tokenizer: WordpieceTokenizer,
    corpus: Sequence[str],
    check_texts: Sequence[str],
    min_count: int = 1,
    characters: str = "all",
):
    """(trimmed encoder copy, trimmed tokenizer, report); `check_texts` measure the [UNK] share before/after."""
    keep, info = choose_vocabulary(tokenizer, corpus, min_count, characters)
    keep, anchors = with_scale_anchors(module, keep)
    info["kept_for_int8_scale"] = anchors
    info["kept"] = int(len(keep))
    new_tokenizer = trimmed_tokenizer(tokenizer, keep)
    new_module = trimmed_encoder(module, keep)
    width = new_module.get_input_embeddings().embedding_dim
    info.update(
        {
            "embedding_rows_removed": int(info["original_size"] - len(keep)),
            "embedding_parameters_removed": int((info["original_size"] - len(keep)) * width),
            "check_before": unk_share(tokenizer, check_texts),
            "check_after": unk_share(new_tokenizer, check_texts),
        }
    )
    return new_module, new_tokenizer, info
