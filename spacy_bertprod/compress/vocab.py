"""Vocabulary trimming: keep the wordpieces a domain corpus uses, drop the rest of the embedding.

Half of MiniLM's parameters are its 30,522-row word embedding, and a domain uses a fraction of
it. We keep every wordpiece the corpus produces (at least `min_count` times), every special
token, and every single character with and without the continuation prefix, so any text still
tokenizes: a word whose long pieces were dropped falls back to shorter ones (WordPiece is
greedy longest-match), and only characters the original vocabulary never had become [UNK].
Ids are renumbered in their original order; the tokenizer (`tokenizer.json`) and the encoder's
embedding are rewritten together, so the pair stays consistent. WordPiece (BERT family) only.
"""

import copy
import json
from collections import Counter
from typing import Any, Dict, List, Sequence, Tuple

import numpy

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


def choose_vocabulary(
    tokenizer: WordpieceTokenizer, texts: Sequence[str], min_count: int = 1
) -> Tuple[numpy.ndarray, Dict[str, Any]]:
    """The ids to keep (sorted) and what was counted."""
    data = json.loads(tokenizer.tokenizer_json)
    model = data.get("model", {})
    if model.get("type") != "WordPiece":
        raise ValueError(
            f"Vocabulary trimming supports WordPiece tokenizers (BERT, DistilBERT, MiniLM, ELECTRA); "
            f"this encoder's tokenizer is {model.get('type')}. Compress without --trim-vocab."
        )
    if min_count < 1:
        raise ValueError(f"--vocab-min-count must be at least 1, got {min_count}.")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("The --trim-vocab corpus holds no text: give the training data (or more in-domain text).")
    vocab: Dict[str, int] = model["vocab"]
    prefix = model.get("continuing_subword_prefix", "##")
    counts: Counter = Counter()
    for encoding in tokenizer.tokenizer.encode_batch(texts, add_special_tokens=False):
        counts.update(encoding.ids)
    used = {i for i, n in counts.items() if n >= min_count}
    characters = {
        i for tok, i in vocab.items() if len(tok) == 1 or (tok.startswith(prefix) and len(tok) == len(prefix) + 1)
    }
    specials = set(_special_ids(data)) | {vocab[model["unk_token"]], tokenizer.pad_id}
    keep = numpy.asarray(sorted(used | characters | specials), dtype="int64")
    info = {
        "corpus_texts": len(texts),
        "corpus_wordpieces": int(sum(counts.values())),
        "min_count": min_count,
        "original_size": len(vocab),
        "kept": int(len(keep)),
        "kept_from_corpus": len(used),
        "kept_single_characters": len(characters),
        "kept_special": len(specials),
    }
    return keep, info


def trimmed_tokenizer(tokenizer: WordpieceTokenizer, keep: numpy.ndarray) -> WordpieceTokenizer:
    """The same tokenizer over the kept wordpieces only, renumbered 0..len(keep)-1 in order."""
    data = json.loads(tokenizer.tokenizer_json)
    remap = {int(old): new for new, old in enumerate(keep.tolist())}
    model = data["model"]
    model["vocab"] = {tok: remap[i] for tok, i in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if i in remap}
    for added in data.get("added_tokens", []):
        added["id"] = remap[int(added["id"])]
    _remap_post_processor(data.get("post_processor"), remap)
    if data.get("padding"):
        data["padding"]["pad_id"] = remap[int(data["padding"]["pad_id"])]
    return WordpieceTokenizer(
        json.dumps(data, ensure_ascii=False), max_length=tokenizer.max_length, pad_id=remap[tokenizer.pad_id]
    )


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
    data = json.loads(tokenizer.tokenizer_json)
    unk = data["model"]["vocab"][data["model"]["unk_token"]]
    ids = [e.ids for e in tokenizer.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    total = sum(len(x) for x in ids)
    unknown = sum(x.count(unk) for x in ids)
    return {"unk": unknown, "unk_share": unknown / max(total, 1), "wordpieces_per_text": total / max(len(ids), 1)}


def trim_vocabulary(
    module, tokenizer: WordpieceTokenizer, corpus: Sequence[str], check_texts: Sequence[str], min_count: int = 1
):
    """(trimmed encoder copy, trimmed tokenizer, report); `check_texts` measure the [UNK] share before/after."""
    keep, info = choose_vocabulary(tokenizer, corpus, min_count)
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
