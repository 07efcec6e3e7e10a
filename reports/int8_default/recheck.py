"""compress's agreement check on already compressed pipelines, with the current rule.

    python reports/int8_default/recheck.py ORIGINAL COMPRESSED [COMPRESSED ...] --output OUT.json

For each compressed pipeline: the sample its compress_report.json names (the built-in set, or
the pipeline's dev corpus thinned as compress thins it), and the check compress would print now.
"""

import argparse
import json
from pathlib import Path

import spacy

from spacy_bertprod.compress.parity import agreement_check, prediction_agreement
from spacy_bertprod.compress.sample import choose_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("original", type=Path)
    parser.add_argument("compressed", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    original = spacy.load(args.original)
    paths = dict(original.config.get("paths", {}))
    result = {}
    for path in args.compressed:
        kind = json.loads((path / "compress_report.json").read_text())["settings"]["calibration"]["kind"]
        sample = choose_sample(args.original, paths if kind != "built_in" else {})
        predictions = prediction_agreement(original, spacy.load(path), sample.texts)
        result[path.name] = {
            "sample": sample.to_dict(),
            "predictions": predictions,
            "agreement_check": agreement_check(predictions, sample),
        }
        print(path.name, json.dumps(result[path.name]["agreement_check"]))
    args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
