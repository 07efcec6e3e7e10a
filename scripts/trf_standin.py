"""An en_core_web_trf stand-in for speed: its config shape with random weights, built offline.

    python scripts/trf_standin.py OUT [--conllu EWT_TRAIN] [--steps 8]

en_core_web_trf 3.8 is a spacy-curated-transformers pipeline: `curated_transformer` with
RobertaTransformer.v1 (roberta-base: 12 layers, width 768, 12 heads, feed-forward 3072), a byte BPE
piece encoder, strided spans of 144 pieces every 104, tagger, parser and ner listening through
LastTransformerLayerListener.v1 (reduce_mean), plus attribute_ruler and a rule lemmatizer. This
builds the same: the byte BPE vocabulary is trained here with `tokenizers` on the CoNLL-U and the
shipped corpora (50,265 pieces at most, as roberta-base), the encoder has random weights (its speed
does not depend on their values), the heads are trained a few steps so they predict something,
the attribute_ruler maps each fine tag to its most frequent UPOS in the CoNLL-U file and the rule
lemmatizer has a handful of English suffix rules. Its scores mean nothing; its speed is what
en_core_web_trf's is on the same machine, to a few percent (pieces per word differ slightly).
"""

import argparse
import csv
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List

from curated_pipeline import EWT_TRAIN, build_nlp, examples, initialize_and_train, vocabulary_files, with_loaders

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROBERTA_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
SUFFIX_RULES = {
    "noun": [["s", ""], ["ies", "y"], ["es", ""]],
    "verb": [["ing", ""], ["ed", ""], ["ies", "y"], ["s", ""]],
    "adj": [["er", ""], ["est", ""]],
    "punct": [],
}


def corpus_texts(conllu: Path) -> List[str]:
    """Training text for the piece vocabulary: the CoNLL-U sentences and the shipped corpora."""
    lines = conllu.read_text(encoding="utf8").splitlines()
    texts = [line[len("# text = ") :] for line in lines if line.startswith("# text = ")]
    for path in sorted(SHARED.glob("*/*.csv")):
        with path.open(encoding="utf8", newline="") as f:
            texts.extend(cell for row in csv.reader(f) for cell in row if len(cell.split()) > 2)
    for path in sorted(SHARED.glob("wnut17/*.conll")):
        blocks = path.read_text(encoding="utf8").split("\n\n")
        texts.extend(" ".join(line.split("\t")[0] for line in b.splitlines() if line.strip()) for b in blocks)
    return [t for t in texts if t.strip()]


def roberta_base_folder(folder: Path, texts: List[str], seed: int) -> Path:
    """roberta-base's shape with random weights and a byte BPE vocabulary trained on `texts`."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=50265, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt")).save_pretrained(
        folder
    )
    config = RobertaConfig(vocab_size=bpe.get_vocab_size(), max_position_embeddings=514, pad_token_id=1, **ROBERTA_BASE)
    torch.manual_seed(seed)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    return folder


def tag_map(conllu: Path) -> Dict[str, str]:
    """Each fine (XPOS) tag -> its most frequent UPOS in the treebank."""
    counts: Dict[str, Counter] = defaultdict(Counter)
    for line in conllu.read_text(encoding="utf8").splitlines():
        cols = line.split("\t")
        if len(cols) == 10 and cols[0].isdigit():
            counts[cols[4]][cols[3]] += 1
    return {tag: c.most_common(1)[0][0] for tag, c in counts.items() if tag != "_"}


def add_rule_components(nlp, conllu: Path) -> None:
    """attribute_ruler (tag -> POS) and a rule lemmatizer after the heads, as in en_core_web_trf."""
    ruler = nlp.add_pipe("attribute_ruler")
    for tag, pos in tag_map(conllu).items():
        ruler.add([[{"TAG": tag}]], {"POS": pos})
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "rule"})
    from spacy.lookups import Lookups

    lookups = Lookups()
    lookups.add_table("lemma_rules", SUFFIX_RULES)
    lookups.add_table("lemma_index", {pos: [] for pos in SUFFIX_RULES})
    lookups.add_table("lemma_exc", {pos: {} for pos in SUFFIX_RULES})
    lemmatizer.initialize(lookups=lookups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--conllu", type=Path, default=EWT_TRAIN)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoder = roberta_base_folder(
        args.output.parent / f"{args.output.name}-encoder", corpus_texts(args.conllu), args.seed
    )
    nlp = build_nlp("roberta", encoder, ["tagger", "parser", "ner"], "last", window=144, stride=104)
    loaders = (
        {"@model_loaders": "spacy-curated-transformers.HFTransformerEncoderLoader.v1", "name": str(encoder)},
        vocabulary_files("roberta", encoder),
    )
    nlp = with_loaders(nlp, *loaders)
    nlp = initialize_and_train(nlp, examples(nlp, args.conllu, args.sentences, args.seed), args.steps, args.seed)
    add_rule_components(nlp, args.conllu)
    nlp.meta["name"] = "core_web_trf_standin"
    nlp.to_disk(args.output)
    print(f"Wrote {args.output}: {nlp.pipe_names}")


if __name__ == "__main__":
    main()
