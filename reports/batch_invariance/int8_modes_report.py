"""reports/batch_invariance/README.md from what reports/batch_invariance/measure_int8_modes.sh wrote.

    python reports/batch_invariance/int8_modes_report.py reports/batch_invariance [TASK ...]

Every number comes from a JSON file in <dir>/<task>/ (spacy evaluate, bertprod invariance,
bertprod benchmark, compare_sessions.py); a missing file is shown as missing.
"""

import argparse
import json
from pathlib import Path

METRIC = {"ner": ("ents_f", "entity F1"), "textcat": ("cats_micro_f", "accuracy")}
LABELS = {
    "original": "original (stock spacy-transformers, torch)",
    "fp32": "ONNX fp32",
    "int8-dynamic": "int8, dynamic activation scales (before)",
    "int8-calibrated-p9999": "**int8, calibrated scales, p99.99 (default)**",
    "int8-calibrated-p99999": "int8, calibrated scales, p99.999",
    "int8-calibrated-minmax": "int8, calibrated scales, min/max",
}


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def section(folder: Path, task: str):
    key, name = METRIC[task]
    original = load(folder / "eval-original.json")
    ab = load(folder / "ab.json") or {"pipelines": {}}
    speed = {Path(p).name: r for p, r in ab["pipelines"].items()}
    lines = [
        f"## {task}",
        "",
        f"| pipeline | test {name} | Δ vs original | same answer alone / batch 1,16,64,256 / shuffled / 2 processes "
        "| bare session wordpieces/s (interleaved median) | vs dynamic int8 |",
        "|---|---|---|---|---|---|",
    ]
    for variant, label in LABELS.items():
        scores = load(folder / f"eval-{variant}.json")
        if scores is None:
            continue
        inv = load(folder / f"invariance-{variant}.json")
        conditions = ["batch_1", "batch_16", "batch_64", "batch_256", "shuffled_batch_256", "n_process_2"]
        cells = (
            "missing"
            if inv is None
            else " / ".join(
                f"{inv[f'identical_{c}']:.2%}" if f"identical_{c}" in inv else "not run" for c in conditions
            )
            + f" (n={inv['n_docs']})"
        )
        run = speed.get(variant)
        dynamic = speed.get("int8-dynamic")
        wps = f"{run['wordpieces_per_s_median']:,.0f}" if run else ""
        rel = f"{run['wordpieces_per_s_median'] / dynamic['wordpieces_per_s_median']:.3f}x" if run and dynamic else ""
        delta = f"{(scores[key] - original[key]) * 100:+.2f}" if original and variant != "original" else ""
        lines.append(f"| {label} | {scores[key] * 100:.2f} | {delta} | {cells} | {wps} | {rel} |")
    bench = load(folder / "benchmark.json")
    if bench:
        lines += [
            "",
            "Whole pipelines, `bertprod benchmark` (each in its own process, one after the other; words/s median of "
            "the repeats):",
            "",
        ]
        for result in bench["results"]:
            lines.append(
                f"- {Path(result['pipeline']).name}: {result['words_per_s']['median']:,.0f} words/s "
                f"({result['words_per_s']['min']:,.0f}-{result['words_per_s']['max']:,.0f}), "
                f"{result['speedup_vs_first']:.1f}x the first, batch-1 p50 {result['latency_ms_batch1']['p50']:.1f} ms"
            )
    lines += [
        "",
        "The original pipeline was checked in one process on the first 600 texts: spacy-transformers hangs with "
        "n_process > 1.",
    ]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="reports/batch_invariance (holds <task>/ folders of JSON files)")
    parser.add_argument("tasks", nargs="*", help=f"tasks to report (default: those of {sorted(METRIC)} present)")
    args = parser.parse_args()
    folder = args.folder
    tasks = args.tasks or [t for t in METRIC if (folder / t).is_dir()]
    out = [
        "# int8 activation scales: accuracy, same text same answer, speed",
        "",
        "Made by `reports/batch_invariance/measure_int8_modes.sh` and "
        "`reports/batch_invariance/int8_modes_report.py`; numbers from the JSON files next to this report.",
        "",
    ]
    for task in tasks:
        out += section(folder / task, task)
    (folder / "README.md").write_text("\n".join(out), encoding="utf8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
