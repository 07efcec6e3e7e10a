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

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]

BLOCKED_LOAD = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "spacy_transformers"):
            raise ImportError(name + " is blocked")
sys.meta_path.insert(0, Block())
import spacy
doc = spacy.load(sys.argv[1])("Alice flew to Paris")
print("OK", doc._.trf_data.hidden.shape[1])
"""


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
        result[quantize] = {
            "seconds": round(time.perf_counter() - start, 1),
            "entities_equal_stock": sum(same) / len(same),
            "max_textcat_diff_vs_stock": diff,
            "encoder_max_abs_diff_vs_torch": report["parity"]["fp32_max_abs_diff_vs_torch"],
            "fusion": report["fusion"],
            "size_bytes": report["sizes_bytes"]["output_pipeline"],
        }
        if quantize == "int8":
            result["int8"]["same_answer"] = batch_invariance(ours, sample, batch_sizes=(1, 16, 64, 256), n_process=2)
    run = subprocess.run([sys.executable, "-c", BLOCKED_LOAD, str(folder / "int8")], capture_output=True, text=True)
    result["int8_loads_without_torch"] = run.returncode == 0 and run.stdout.startswith("OK")
    result["make_student"] = student(folder)
    result["pruning"] = pruning(folder, nlp)
    return result


def student(folder: Path) -> dict:
    from spacy_bertprod.distill.student import make_student

    out = {}
    for pick in ("bottom", "spread"):
        try:
            out[pick] = make_student(folder / "stock", folder / f"student-{pick}", 2, pick=pick)["layer_map"]
        except ValueError as error:
            out[pick] = f"refused: {error}"
    return out


def pruning(folder: Path, nlp) -> str:
    from spacy.tokens import DocBin

    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    from conftest import make_examples

    data = folder / "prune.spacy"
    DocBin(docs=[e.reference for e in make_examples(nlp, n=16)]).to_disk(data)
    settings = CompressSettings(quantize="fp32", prune_heads=0.5, prune_ffn=0.25, prune_data=data, optimize=True)
    try:
        report = compress_pipeline(folder / "stock", folder / "pruned", settings)
    except ValueError as error:
        return f"refused: {error}"
    p = report["pruning"]
    size = f"parameters {p['parameters_before']:,} -> {p['parameters_after']:,}"
    return f"pruned: heads per layer {p['heads_kept_per_layer']}, {size}"


def main() -> None:
    from spacy_bertprod.families import FAMILIES

    work, output = Path(sys.argv[1]), Path(sys.argv[2])
    families = sys.argv[3:] or sorted(FAMILIES)
    results = json.loads(output.read_text()) if output.exists() else {}
    for family in families:
        print(f"=== {family}", flush=True)
        results[family] = measure_family(family, work)
        output.write_text(json.dumps(results, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
