"""The seed study's table: dev / test entity F1 per seed, then mean ± std over the seeds that
finished, as a share of the torch teacher's test F1. Reads the JSON `run.sh collect` copied.
    python reports/mpnet/run4/table.py [reports/mpnet/run4]
"""

import json
import statistics
import sys
from pathlib import Path

MODELS = ("distilled-s{}-torch", "distilled-s{}-onnx-int8", "control-s{}-torch", "control-s{}-onnx-int8")


def f1(folder: Path, split: str, name: str):
    path = folder / split / f"{name}.json"
    return json.loads(path.read_text())["ents_f"] * 100 if path.exists() else None


def spread(values):
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def main(folder: Path) -> None:
    teacher = f1(folder, "test", "teacher-torch")
    scores = {m: {} for m in MODELS}
    for seed in (1, 2, 0):
        for model in MODELS:
            dev, test = f1(folder, "dev", model.format(seed)), f1(folder, "test", model.format(seed))
            if test is not None:
                scores[model][seed] = (dev, test)
        row = [scores[m].get(seed) for m in MODELS]
        print(f"| {seed} | " + " | ".join("not run" if r is None else f"{r[0]:.2f} / {r[1]:.2f}" for r in row) + " |")
    devs = [spread([d for d, _ in scores[m].values()]) for m in MODELS]
    tests = [spread([t for _, t in scores[m].values()]) for m in MODELS]
    print("| mean ± std, dev | " + " | ".join(devs) + " |")
    print("| mean ± std, test | " + " | ".join(tests) + " |")
    shares = [f"{statistics.mean(t for _, t in scores[m].values()) / teacher:.1%}" for m in MODELS]
    print(f"| test mean / torch teacher's {teacher:.2f} | " + " | ".join(shares) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/mpnet/run4"))
