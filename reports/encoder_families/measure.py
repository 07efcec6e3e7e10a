"""Every supported encoder family through compress, on a stock spacy-transformers pipeline.

    python reports/encoder_families/measure.py WORK_DIR reports/encoder_families/results.json [FAMILY ...]

Per family: a small random-weight encoder of the family's architecture and tokenizer kind
(scripts/tiny_encoder.py, 4 layers x 32), a stock spacy-transformers pipeline (ner + textcat, as
tests/conftest.py builds it) trained 20 steps, compressed to fp32 and int8 ONNX with the defaults.
Measured on compress's built-in calibration texts (329 texts, many registers and 20+ scripts):
- fp32: share of texts whose entities equal the stock pipeline's, largest textcat score difference;
- int8: share of texts with the same answer alone, batched (1, 16, 64, 256), shuffled, and in
  2 worker processes; share whose entities equal the stock pipeline's;
- the int8 pipeline loads and runs with torch, transformers and spacy-transformers blocked;
- make-student (2 layers, both picks) and pruning: works, or the refusal message;
- the fusions ONNX Runtime's optimizer made.
Scores of random-weight models mean nothing; this measures that every stage runs and keeps the
guarantees on each family's graph and tokenizer.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]


def spacy_load(path: Path):
    import spacy

    return spacy.load(path)


def texts():
    from spacy_bertprod.compress.sample import built_in_texts

    return built_in_texts()


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def measure_family(family: str, work: Path) -> dict:
    import spacy
    from tiny_encoder import build_family_encoder

    from spacy_bertprod.compress import CompressSettings, compress_pipeline
    from spacy_bertprod.compress.parity import batch_invariance

    from conftest import build_pipeline, make_examples, train

    folder = work / family
    encoder = build_family_encoder(family, folder / "encoder")
    nlp = build_pipeline(encoder, stock=True)
    train(nlp, make_examples(nlp, n=80), steps=20)
    nlp.to_disk(folder / "stock")
    result = {"family": family}
    sample = texts()
    stock = spacy.load(folder / "stock")
    stock_docs = list(stock.pipe(sample))
    for quantize in ("fp32", "int8"):
        start = time.perf_counter()
        report = compress_pipeline(folder / "stock", folder / quantize, CompressSettings(quantize=quantize))
        ours = spacy.load(folder / quantize)
        docs = list(ours.pipe(sample))
        same = [ents(a) == ents(b) for a, b in zip(stock_docs, docs)]
        diff = max(abs(a.cats[k] - b.cats[k]) for a, b in zip(stock_docs, docs) for k in a.cats)
        # spacy-transformers truncates a window longer than the encoder's 64 positions, we split it:
        # the scores can only agree where no window is that long (fewer wordpieces than that in all).
        fits = [_fits(stock, d.text) for d in stock_docs]
        fit_diff = max(abs(a.cats[k] - b.cats[k]) for a, b, f in zip(stock_docs, docs, fits) if f for k in a.cats)
        result[quantize] = {
            "seconds": round(time.perf_counter() - start, 1),
            "entities_equal_stock": sum(same) / len(same),
            "max_textcat_diff_vs_stock": diff,
            "max_textcat_diff_vs_stock_texts_within_positions": fit_diff,
            "texts_within_positions": sum(fits),
            "encoder_max_abs_diff_vs_torch": report["parity"]["fp32_max_abs_diff_vs_torch"],
            "fusion": report["fusion"],
            "size_bytes": report["sizes_bytes"]["output_pipeline"],
        }
        if quantize == "int8":
            result["int8"]["same_answer"] = batch_invariance(ours, sample, batch_sizes=(1, 16, 64, 256), n_process=2)
    result["int8_loads_without_torch"] = loads_without_torch(folder / "int8")
    result["make_student"] = student(folder)
    result["pruning"] = pruning(folder, nlp)
    return result


def _fits(stock, text: str) -> bool:
    tokenizer = stock.get_pipe("transformer").model.tokenizer
    return len(tokenizer(text)["input_ids"]) <= tokenizer.model_max_length


def loads_without_torch(path: Path) -> bool:
    """Loads and runs with torch, transformers and spacy-transformers hidden (tests/test_families.py)."""
    from test_families import BLOCK_TORCH

    run = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(path)], capture_output=True, text=True)
    return run.returncode == 0 and "LOADED 1" in run.stdout


def student(folder: Path) -> dict:
    from spacy_bertprod.distill.student import make_student

    out = {}
    for pick in ("bottom", "spread"):
        try:
            out[pick] = make_student(folder / "stock", folder / f"student-{pick}", 2, pick=pick)["layer_map"]
        except ValueError as error:
            out[pick] = f"refused: {error}"
    return out


def pruning(folder: Path, nlp) -> dict:
    return {"heads_and_ffn": _prune(folder, nlp, 0.5, 0.25), "ffn_only": _prune(folder, nlp, 0.0, 0.25)}


def _prune(folder: Path, nlp, heads: float, ffn: float) -> str:
    from spacy.tokens import DocBin

    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    from conftest import make_examples

    data = folder / "prune.spacy"
    DocBin(docs=[e.reference for e in make_examples(nlp, n=16)]).to_disk(data)
    settings = CompressSettings(quantize="fp32", prune_heads=heads, prune_ffn=ffn, prune_data=data, force=True)
    try:
        report = compress_pipeline(folder / "stock", folder / "pruned", settings)
    except ValueError as error:
        return f"refused: {error}"
    p = report["pruning"]
    size = f"parameters {p['parameters_before']:,} -> {p['parameters_after']:,}"
    return f"pruned: heads per layer {p['heads_kept_per_layer']}, {size}"


def main() -> None:
    from spacy_bertprod.families import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="Folder for the pipelines it builds")
    parser.add_argument("output", type=Path, help="results.json (updated family by family)")
    parser.add_argument(
        "families",
        nargs="*",
        help=f"Families (default: all of {sorted(FAMILIES)}); --recheck: "
        "only the checks, on the pipelines already in WORK",
    )
    args, rest = parser.parse_known_args()
    work, output = args.work, args.output
    families = args.families + rest or sorted(FAMILIES)
    results = json.loads(output.read_text()) if output.exists() else {}
    if families == ["--recheck"]:  # only the checks below, on the pipelines already built in WORK_DIR
        for family, result in results.items():
            result["int8_loads_without_torch"] = loads_without_torch(work / family / "int8")
            stock, fp32 = (spacy_load(work / family / n) for n in ("stock", "fp32"))
            sample = texts()
            pairs = [(a, b) for a, b in zip(stock.pipe(sample), fp32.pipe(sample)) if _fits(stock, a.text)]
            result["fp32"]["max_textcat_diff_vs_stock_texts_within_positions"] = max(
                abs(a.cats[k] - b.cats[k]) for a, b in pairs for k in a.cats
            )
            result["fp32"]["texts_within_positions"] = len(pairs)
        output.write_text(json.dumps(results, indent=2), encoding="utf8")
        return
    for family in families:
        print(f"=== {family}", flush=True)
        results[family] = measure_family(family, work)
        output.write_text(json.dumps(results, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
