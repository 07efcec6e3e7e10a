"""int8 without --sample: which calibration texts and which range rule hold accuracy (issue 23).

    python reports/int8_default/measure.py PIPELINE TEST.spacy DEV.spacy OUT.json [--work DIR]

Compresses one trained pipeline to int8 with each calibration sample (the 16 sentences that were
the built-in sample before, the new built-in set, the pipeline's dev corpus thinned as compress
thins it by default, the whole dev corpus) and each range rule (percentile 99.99, 99.999,
min/max), then `spacy evaluate`s each on TEST next to the original and counts the test docs whose
predictions equal the original's (more sensitive than F1 on one pipeline). Same process for all:
the numbers are accuracies, not speeds.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import spacy
from spacy.cli.evaluate import evaluate

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.parity import prediction_agreement
from spacy_bertprod.compress.quantize import QuantizeSettings
from spacy_bertprod.compress.sample import DEFAULT_SAMPLE_DOCS, built_in_texts, thin_evenly
from spacy_bertprod.texts import read_texts

# The built-in sample before issue 23 (16 sentences in compress/parity.py).
OLD_COMMIT = "2510962"


def old_sample() -> list:
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:spacy_bertprod/compress/parity.py"], capture_output=True, text=True, check=True
    ).stdout
    start = source.index("DEFAULT_SAMPLE = [")
    end = source.index("]\n", start) + 1
    scope: dict = {}
    exec(source[start:end], scope)
    return scope["DEFAULT_SAMPLE"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--work", type=Path, default=Path("training/int8_default"))
    parser.add_argument("--variants", default="")
    args = parser.parse_args()
    dev = read_texts(args.dev)
    samples = {
        "old16": old_sample(),
        "built_in": built_in_texts(),
        "config_dev": thin_evenly(dev, DEFAULT_SAMPLE_DOCS),
        "dev_full": dev,
    }
    variants = [
        ("old16", 99.99),
        ("built_in", 99.99),
        ("built_in", 99.999),
        ("built_in", 100.0),
        ("config_dev", 99.99),
        ("config_dev", 100.0),
    ]
    if args.variants:
        keep = set(args.variants.split(","))
        variants = [v for v in variants if f"{v[0]}-{v[1]}" in keep]
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    test_texts = read_texts(args.test)
    original = spacy.load(args.pipeline)
    if "original" not in results:
        results["original"] = {"test": _scores(evaluate(str(args.pipeline), args.test))}
    for name, percentile in variants:
        key = f"{name}-p{percentile:g}"
        if key in results:
            continue
        out = args.work / args.pipeline.parent.name / key
        settings = CompressSettings(
            quantize="int8",
            force=True,
            sample_texts=samples[name],
            sample_source=name,
            quantization=QuantizeSettings(calibration_percentile=percentile),
        )
        report = compress_pipeline(args.pipeline, out, settings)
        results[key] = {
            "sample_docs": len(samples[name]),
            "percentile": percentile,
            "test": _scores(evaluate(str(out), args.test)),
            # the same predictions as the original pipeline, test doc by test doc
            "test_agreement": prediction_agreement(original, spacy.load(out), test_texts),
            "sample_agreement": report["parity"]["agreement_check"],
            "sample_predictions": report["parity"]["predictions"],
            "mean_clipped_share": report["settings"]["calibration"]["mean_clipped_share"],
        }
        shutil.rmtree(out, ignore_errors=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
        print(key, json.dumps(results[key]["test"]), flush=True)
    return 0


def _scores(scores: dict) -> dict:
    keep = ("ents_f", "ents_p", "ents_r", "cats_score", "cats_micro_f", "cats_macro_f")
    return {k: round(float(scores[k]) * 100, 2) for k in keep if scores.get(k) is not None}


if __name__ == "__main__":
    sys.exit(main())
