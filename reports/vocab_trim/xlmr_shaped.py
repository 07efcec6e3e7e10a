"""Vocabulary trimming on an XLM-R-base-shaped int8 pipeline (SentencePiece/Unigram, 250,002 pieces).

    python reports/vocab_trim/xlmr_shaped.py WORK_DIR reports/vocab_trim/xlmr_shaped.json [--mirror ../shared/data]
    python reports/vocab_trim/xlmr_shaped.py WORK_DIR reports/vocab_trim/xlmr_shaped.json --unchanged-pieces

No XLM-R weights are reachable here, so the pipeline is XLM-R-base's *shape* with random weights:
XLMRobertaConfig (12 layers x 768, 12 heads, 3,072 feed-forward, 514 positions) and a Unigram
tokenizer (Metaspace, `<s> $A </s>`) trained on the local corpora (WNUT-17, Banking77, STS-B train
texts and compress's built-in set), padded to XLM-R's 250,002 pieces with single characters of
CJK, Hangul, kana, Thai, Devanagari and other scripts and multi-character pieces of them, scored
below every trained piece. Its word embedding is then ~192M of ~278M parameters, as XLM-R-base's.
A bertprod torch pipeline (transformer + textcat on Banking77's intents, a few training steps:
the scores mean nothing, the comparison is what counts) is compressed to int8 three times:
untrimmed, trimmed to Banking77's training texts keeping every single character, and trimmed
keeping only the characters the corpus uses (--vocab-characters corpus). Measured: pipeline
folder sizes, pieces kept, and on Banking77's test texts (in-domain) whether each trimmed
pipeline predicts what the untrimmed one does, and [UNK] counts.
"""

import argparse
import csv
import dataclasses
import json
import random
import sys
from pathlib import Path

from spacy_bertprod.paths import folder_size

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "scripts")]

SCRIPTS = [  # (first, last) code points of the padding's scripts
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0x3040, 0x30FF),  # kana
    (0x0E01, 0x0E5B),  # Thai
    (0x0900, 0x097F),  # Devanagari
    (0x0600, 0x06FF),  # Arabic
    (0x0400, 0x04FF),  # Cyrillic
    (0x0370, 0x03FF),  # Greek
    (0x0980, 0x09FF),  # Bengali
    (0x0B80, 0x0BFF),  # Tamil
]
XLMR_VOCAB = 250_002
PADDING_SINGLE_CHARACTERS = 14_000


def corpus_texts(mirror: Path):
    from tiny_encoder import default_corpus

    texts = list(default_corpus())
    with (mirror / "banking77" / "train.csv").open(encoding="utf8") as f:
        banking = [row["text"] for row in csv.DictReader(f)]
    wnut, words = [], []
    for line in (mirror / "wnut17" / "wnut17train.conll").read_text(encoding="utf8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            wnut.append(" ".join(words))
            words = []
    with (mirror / "stsb" / "stsb-en-train.csv").open(encoding="utf8") as f:
        stsb = [cell for row in csv.reader(f) for cell in row[:2]]
    return texts + banking + wnut + stsb, banking


def banking_test(mirror: Path):
    with (mirror / "banking77" / "test.csv").open(encoding="utf8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], sorted({r["category"] for r in rows})


def padded_unigram(texts, folder: Path):
    """The trained Unigram padded to XLM-R's size, saved as a transformers tokenizer folder."""
    from tiny_encoder import build_tokenizer
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    base = build_tokenizer("unigram", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<s> </s>", texts, 40_000)
    data = json.loads(base.to_str())
    vocab = data["model"]["vocab"]
    have = {piece for piece, _ in vocab}
    floor = min(score for _, score in vocab[5:]) - 1.0
    rng = random.Random(0)
    pool = [chr(c) for first, last in SCRIPTS for c in range(first, last + 1)]
    singles = [c for c in pool[:] if c not in have]
    rng.shuffle(singles)
    for char in singles[:PADDING_SINGLE_CHARACTERS]:
        vocab.append([char, floor - rng.random()])
        have.add(char)
    while len(vocab) < XLMR_VOCAB:
        piece = ("\u2581" if rng.random() < 0.5 else "") + "".join(rng.choices(pool, k=rng.randint(2, 6)))
        if piece not in have:
            vocab.append([piece, floor - 1.0 - rng.random()])
            have.add(piece)
    tokenizer = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=512,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_input_names=["input_ids", "attention_mask"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(folder)
    return tokenizer.get_vocab_size(), len(singles[:PADDING_SINGLE_CHARACTERS])


def build_encoder(folder: Path, vocab_size: int) -> int:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=vocab_size, max_position_embeddings=514, pad_token_id=1, type_vocab_size=1)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    model.save_pretrained(folder, safe_serialization=True)
    return sum(p.numel() for p in model.parameters())


def build_pipeline(encoder: Path, labels, texts, out: Path) -> None:
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_bertprod.TorchTransformer.v2",
        "name": str(encoder),
        "get_spans": {"@misc": "spacy_bertprod.strided_spans.v1", "window": 128, "stride": 96},
    }
    nlp.add_pipe("bertprod_transformer", name="transformer", config={"model": model})
    listener = {"@architectures": "spacy_bertprod.TransformerListener.v1", "pooling": {"@layers": "reduce_mean.v1"}}
    textcat = {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True, "use_reduce_first": False}
    textcat.update(use_reduce_last=False, use_reduce_max=False, use_reduce_mean=True, tok2vec=listener)
    nlp.add_pipe("textcat", config={"model": textcat})
    rng = random.Random(0)
    picks = [rng.choice(labels) for _ in texts[:64]]
    examples = [
        Example.from_dict(nlp.make_doc(t), {"cats": {label: float(label == pick) for label in labels}})
        for t, pick in zip(texts, picks)
    ]
    optimizer = nlp.initialize(lambda: examples)
    for step in range(3):
        nlp.update(examples[step * 16 : (step + 1) * 16], sgd=optimizer)
    nlp.to_disk(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--reuse", action="store_true", help="Keep WORK_DIR's encoder, pipeline and untrimmed int8")
    parser.add_argument("--unchanged-pieces", action="store_true", help="Only add the check on unchanged pieces")
    args = parser.parse_args()
    if args.unchanged_pieces:
        unchanged_pieces_check(args.work, args.output, args.mirror)
        return
    import spacy

    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    texts, banking_train = corpus_texts(args.mirror)
    test_texts, labels = banking_test(args.mirror)
    encoder = args.work / "encoder"
    if args.reuse and args.output.exists():
        result = json.loads(args.output.read_text(encoding="utf8"))
    else:
        vocab_size, singles = padded_unigram(texts, encoder)
        parameters = build_encoder(encoder, vocab_size)
        build_pipeline(encoder, labels, banking_train, args.work / "torch")
        result = {"vocab_size": vocab_size, "padding_single_characters": singles, "parameters": parameters}
        result["embedding_parameters"] = vocab_size * 768
    sample = banking_train[::23][:400]
    runs = {
        "untrimmed": {},
        "trimmed_all_characters": {"vocab_texts": banking_train},
        "trimmed_corpus_characters": {"vocab_texts": banking_train, "vocab_characters": "corpus"},
    }
    for name, extra in runs.items():
        if args.reuse and name == "untrimmed" and (args.work / name).exists():
            continue
        settings = CompressSettings(quantize="int8", sample_texts=sample, sample_source="banking77 train", **extra)
        report = compress_pipeline(args.work / "torch", args.work / name, dataclasses.replace(settings, force=True))
        result[name] = {
            "pipeline_bytes": folder_size(args.work / name),
            "vocabulary": report["vocabulary"],
            "same_answer_all": report["parity"]["batch_invariance"]["identical_all"],
        }
    reference = [d.cats for d in spacy.load(args.work / "untrimmed").pipe(test_texts)]
    for name in ("trimmed_all_characters", "trimmed_corpus_characters"):
        cats = [d.cats for d in spacy.load(args.work / name).pipe(test_texts)]
        top = [max(a, key=a.get) == max(b, key=b.get) for a, b in zip(reference, cats)]
        diff = max(abs(a[k] - b[k]) for a, b in zip(reference, cats) for k in a)
        result[name].update(
            test_texts=len(test_texts),
            same_top_label_as_untrimmed=sum(top) / len(top),
            max_score_diff_vs_untrimmed=diff,
            size_over_untrimmed=result[name]["pipeline_bytes"] / result["untrimmed"]["pipeline_bytes"],
        )
    args.output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(json.dumps({k: v for k, v in result.items() if k != "untrimmed"}, indent=2)[:3000])


def unchanged_pieces_check(work: Path, output: Path, mirror: Path) -> None:
    """Add to the report: on the test texts that tokenize to the same pieces after trimming (the
    in-domain ones), the largest score difference against the untrimmed pipeline."""
    import spacy

    from spacy_bertprod.transformer_model import get_tokenizer

    result = json.loads(output.read_text(encoding="utf8"))
    test_texts, _ = banking_test(mirror)
    untrimmed = spacy.load(work / "untrimmed")
    before = get_tokenizer(untrimmed.get_pipe("transformer").model).tokenizer
    reference = [d.cats for d in untrimmed.pipe(test_texts)]
    for name in ("trimmed_all_characters", "trimmed_corpus_characters"):
        nlp = spacy.load(work / name)
        after = get_tokenizer(nlp.get_pipe("transformer").model).tokenizer
        same = [a.tokens == b.tokens for a, b in zip(before.encode_batch(test_texts), after.encode_batch(test_texts))]
        cats = [d.cats for d in nlp.pipe(test_texts)]
        diffs = [max(abs(a[k] - b[k]) for k in a) for a, b, s in zip(reference, cats, same) if s]
        result[name].update(test_texts_same_pieces=sum(same), max_score_diff_same_pieces=max(diffs) if diffs else None)
    output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
