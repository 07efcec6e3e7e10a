"""A markdown table of dev and test scores for named runs, from `scripts/evaluate.py` outputs.

    python reports/distill_ablation/ablation.py METRICS_DIR --score ents_f NAME="what changed" ... [--baseline NAME]

Reads METRICS_DIR/<split>/<NAME>.json (dev and test) and prints one row per run, with the
difference to the baseline row where one is named. Used for reports/distill_ablation.
"""

import argparse
import json
import sys
from pathlib import Path


def score(metrics: Path, split: str, name: str, key: str) -> float:
    path = metrics / split / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/evaluate.py for {name} first.")
    data = json.loads(path.read_text(encoding="utf8"))
    if key not in data:
        raise KeyError(f"{path} has no '{key}' (it has {sorted(data)[:8]}...).")
    return float(data[key]) * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("runs", nargs="+", help='NAME="description" pairs')
    parser.add_argument("--score", required=True, help="metric key, e.g. ents_f or cats_micro_f")
    parser.add_argument("--baseline", default="", help="NAME of the row the others are compared with")
    args = parser.parse_args()
    rows = []
    for item in args.runs:
        name, sep, description = item.partition("=")
        if not sep:
            parser.error(f"expected NAME=description, got {item!r}")
        rows.append(
            (
                name,
                description,
                score(args.metrics, "dev", name, args.score),
                score(args.metrics, "test", name, args.score),
            )
        )
    base = {name: (dev, test) for name, _, dev, test in rows}.get(args.baseline)
    print(f"| run | what changed | dev {args.score} | test {args.score} |")
    print("|---|---|---|---|")
    for name, description, dev, test in rows:
        compare = base is not None and name != args.baseline
        dev_delta = f" ({dev - base[0]:+.2f})" if compare else ""
        test_delta = f" ({test - base[1]:+.2f})" if compare else ""
        print(f"| `{name}` | {description} | {dev:.2f}{dev_delta} | {test:.2f}{test_delta} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
