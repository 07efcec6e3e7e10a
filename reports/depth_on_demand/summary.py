"""The depth-on-demand table: accuracy per kept depth, trained without and with random_depth, and speed.

    python reports/depth_on_demand/summary.py METRICS_DIR BENCHMARK.json --depths "6 4 3 2 1"

Reads METRICS_DIR/<split>/<plain|random>-d<depth>.json (`scripts/evaluate.py` output) and the
`bertprod benchmark` report of the random-depth pipelines; prints a markdown table.
"""

import argparse
import json
from pathlib import Path


def accuracy(metrics: Path, split: str, name: str) -> float:
    path = metrics / split / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/evaluate.py for {name} first.")
    return float(json.loads(path.read_text(encoding="utf8"))["cats_micro_f"]) * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--depths", required=True)
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split()]
    speed = {}
    for result in json.loads(args.benchmark.read_text(encoding="utf8"))["results"]:
        depth = int(result["pipeline"].rstrip("/").rsplit("-d", 1)[1])
        speed[depth] = result["words_per_s"]["median"]
    full = speed[max(depths)]
    print("| layers kept | trained plainly: dev / test accuracy | trained with random_depth: dev / test accuracy "
          "| int8 words/s (random_depth) | x all layers |")  # fmt: skip
    print("|---|---|---|---|---|")
    for depth in depths:
        runs = [f"{name}-d{depth}" for name in ("plain", "random")]
        cells = [f"{accuracy(args.metrics, split, run):.2f}" for run in runs for split in ("dev", "test")]
        print(
            f"| {depth} | {cells[0]} / {cells[1]} | {cells[2]} / {cells[3]} | {speed[depth]:,.0f} | "
            f"{speed[depth] / full:.2f} |"
        )


if __name__ == "__main__":
    main()
