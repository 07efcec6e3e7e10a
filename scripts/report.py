"""Write reports/<run>/report.md and accuracy_vs_speed.png from the files under metrics/<run>/.

Every number comes from a file a command wrote: `spacy evaluate` JSON (accuracy), the benchmark
JSON (words/s, latency, size on disk), compress_report.json, wheel.json and metrics/timings.jsonl.
Nothing is typed by hand; a missing file is reported as missing.
"""
import argparse
import json
from pathlib import Path

MODELS = [("teacher", "teacher (MiniLM-L6)"), ("student", "student, no teacher (control)"), ("student-kd", "student, distilled")]
FORMATS = [("torch", "torch fp32"), ("onnx-fp32", "ONNX fp32"), ("onnx-int8", "ONNX int8")]
TASKS = {
    "ner": {"key": "ents_f", "name": "entity F1", "target": 0.97, "data": "WNUT-17 test"},
    "textcat": {"key": "cats_micro_f", "name": "accuracy", "target": 0.98, "data": "Banking77 test"},
}


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def task_section(run: str, task: str, spec: dict):
    metrics = Path("metrics") / run / task
    bench = load(metrics / "benchmark.json")
    speed = {}
    if bench:
        for result in bench["results"]:
            speed[Path(result["pipeline"]).as_posix()] = result
    rows, points = [], []
    teacher = load(metrics / "teacher-torch.json")
    teacher_score = teacher[spec["key"]] if teacher else None
    teacher_speed = None
    for model, model_label in MODELS:
        for fmt, fmt_label in FORMATS:
            name = f"{model}-{fmt}"
            scores = load(metrics / f"{name}.json")
            folder = f"training/{run}/{task}/{model}/model-best" if fmt == "torch" else f"training/{run}/{task}/{model}-{fmt}"
            bench_row = speed.get(folder)
            if scores is None:
                rows.append(f"| {model_label} | {fmt_label} | missing {metrics / (name + '.json')} | | | | | |")
                continue
            score = scores[spec["key"]]
            wps = bench_row["words_per_s"]["median"] if bench_row else None
            if name == "teacher-torch":
                teacher_speed = wps
            size = bench_row["size_on_disk_bytes"] / 1e6 if bench_row else None
            p50 = bench_row["latency_ms_batch1"]["p50"] if bench_row else None
            rows.append(
                f"| {model_label} | {fmt_label} | {score:.4f} | {score / teacher_score:.1%} | "
                + (f"{wps:,.0f} | {wps / teacher_speed:.1f}x | {p50:.1f} | {size:.1f} |" if wps and teacher_speed else "n/a | | | |")
            )
            points.append((model, fmt, score, wps, size))
    lines = [f"## {task}: {spec['name']} on {spec['data']}", "",
             f"| model | format | {spec['name']} | of teacher | words/s | vs teacher torch | p50 ms (batch 1) | size MB |",
             "|---|---|---|---|---|---|---|---|"] + rows + [""]
    verdicts = []
    kd_int8 = load(metrics / "student-kd-onnx-int8.json")
    if kd_int8 and teacher_score:
        share = kd_int8[spec["key"]] / teacher_score
        verdict = "met" if share >= spec["target"] else f"MISSED by {spec['target'] - share:.1%} of the teacher's score"
        verdicts.append(f"- Target: int8 distilled student keeps >= {spec['target']:.0%} of the teacher's {spec['name']}: {share:.1%} -> {verdict}.")
    for fmt, fmt_label in FORMATS:
        kd, control = load(metrics / f"student-kd-{fmt}.json"), load(metrics / f"student-{fmt}.json")
        if kd and control:
            diff = kd[spec["key"]] - control[spec["key"]]
            word = "beats" if diff > 0 else ("ties" if diff == 0 else "does NOT beat")
            verdicts.append(f"- Distillation ({fmt_label}): the distilled student {word} the same-size student trained without the teacher ({kd[spec['key']]:.4f} vs {control[spec['key']]:.4f}, {diff:+.4f}).")
    invariance = load(metrics / "invariance-student-kd-onnx-int8.json")
    if invariance:
        conditions = ", ".join(k[len("identical_"):].replace("_", " ") for k in invariance if k.startswith("identical_") and k != "identical_all")
        verdicts.append(
            f"- Same text, same answer (int8 distilled student, {invariance['n_docs']} test texts): "
            f"{invariance['identical_all']:.2%} of docs get the same predictions alone (`nlp(text)`) as in every other setting ({conditions})."
        )
    wheel = load(metrics / "wheel.json")
    if wheel:
        verdicts.append(f"- Installed wheel (fresh torch-free virtualenv, {wheel.get('virtualenv_site_packages_bytes', 0) / 1e6:.0f} MB site-packages), `spacy evaluate` by package name: {spec['name']} {wheel[spec['key']]:.4f}.")
    if bench:
        for result in bench["results"]:
            bare = result.get("bare_session")
            if bare and result["pipeline"].endswith("student-kd-onnx-int8"):
                verdicts.append(f"- spaCy-side overhead (int8 distilled student): pipeline reaches {bare['pipeline_share_of_bare']:.0%} of the bare InferenceSession's words/s on the same batches.")
    return lines + verdicts + [""], points


def plot(all_points, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_points), figsize=(6 * len(all_points), 4.5))
    axes = axes if len(all_points) > 1 else [axes]
    colors = {"teacher": "tab:blue", "student": "tab:gray", "student-kd": "tab:orange"}
    markers = {"torch": "o", "onnx-fp32": "s", "onnx-int8": "^"}
    for ax, (task, points) in zip(axes, all_points.items()):
        for model, fmt, score, wps, size in points:
            if wps is None:
                continue
            ax.scatter(wps, score, c=colors[model], marker=markers[fmt], s=40 + (size or 0))
            ax.annotate(f"{size:.0f} MB" if size else "", (wps, score), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("words/s (log, 2 CPU cores)")
        ax.set_ylabel(TASKS[task]["name"])
        ax.set_title(task)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in colors.items()]
    handles += [plt.Line2D([], [], color="black", marker=mk, linestyle="", label=f) for f, mk in markers.items()]
    axes[-1].legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    args = parser.parse_args()
    out_dir = Path("reports") / args.run
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# spacy_bertprod report ({args.run} run)", "",
             "Generated by `scripts/report.py` from `metrics/`; accuracy from `spacy evaluate`, speed and size from "
             "`python -m spacy bertprod benchmark` (median of repeated passes, batch size 64, this machine's 2 cores).", "",
             "![accuracy vs speed](accuracy_vs_speed.png)", ""]
    all_points = {}
    for task, spec in TASKS.items():
        section, points = task_section(args.run, task, spec)
        lines += section
        all_points[task] = points
    timings = Path("metrics") / args.run / "timings.jsonl"
    if timings.exists():
        latest = {}
        for line in timings.read_text().splitlines():
            entry = json.loads(line)
            latest[entry["step"]] = entry["seconds"]
        steps = {k: v for k, v in latest.items()}
        lines += ["## Wall time per step (latest run of each)", "", "| step | seconds |", "|---|---|"]
        lines += [f"| {step} | {seconds:.1f} |" for step, seconds in steps.items()]
        lines += [f"| total of the timed steps | {sum(steps.values()):.1f} |", ""]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    plot(all_points, out_dir / "accuracy_vs_speed.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
