"""Write reports/<run>/report.md from the files under metrics/<run>/ and the pipelines on disk.

Every number comes from a file a command wrote (spacy evaluate JSON, compress_report.json) or is
measured here (pipeline folder sizes); nothing is typed by hand.
"""
import argparse
import json
from pathlib import Path

STAGES = {
    "ner": [
        ("teacher (spacy-transformers, torch fp32)", "teacher-torch", "teacher-stock/model-best"),
        ("teacher, ONNX fp32", "teacher-onnx-fp32", "teacher-onnx-fp32"),
        ("teacher, ONNX int8", "teacher-onnx-int8", "teacher-onnx-int8"),
    ],
}
SCORE = {"ner": ("ents_f", "entity F1")}


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    args = parser.parse_args()
    metrics, training = Path("metrics") / args.run, Path("training") / args.run
    lines = [f"# spacy_bertprod report ({args.run} run)", ""]
    for task, stages in STAGES.items():
        key, name = SCORE[task]
        lines += [f"## {task}", "", f"| stage | {name} | words/s (spacy evaluate) | size on disk (MB) | vs torch teacher |", "|---|---|---|---|---|"]
        reference = None
        for label, metric_name, folder in stages:
            path = metrics / task / f"{metric_name}.json"
            if not path.exists():
                lines.append(f"| {label} | (missing: {path}) | | | |")
                continue
            scores = json.loads(path.read_text())
            score = scores[key]
            reference = score if reference is None else reference
            size = folder_mb(training / task / folder)
            lines.append(f"| {label} | {score:.4f} | {scores['speed']:.0f} | {size:.1f} | {score / reference:.1%} |")
        for _, metric_name, folder in stages:
            report = training / task / folder / "compress_report.json"
            if report.exists():
                data = json.loads(report.read_text())
                lines += ["", f"`{folder}` compress report: fusions {data['fusion_statistics']}, "
                          f"parity {json.dumps(data['parity']['predictions'])}, "
                          f"fp32 max |Δ| vs torch {data['parity']['fp32_max_abs_diff_vs_torch']:.2e}, "
                          f"output cosine vs torch {data['parity']['output_mean_cosine_vs_torch']:.4f}"]
        lines.append("")
    timings = Path("metrics") / "timings.jsonl"
    if timings.exists():
        lines += ["## Wall time per step (latest run of each)", "", "| step | seconds |", "|---|---|"]
        latest = {}
        for line in timings.read_text().splitlines():
            entry = json.loads(line)
            latest[entry["step"]] = entry["seconds"]
        lines += [f"| {step} | {seconds:.1f} |" for step, seconds in latest.items()]
    out = Path("reports") / args.run / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
