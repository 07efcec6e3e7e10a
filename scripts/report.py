"""Write reports/<run>/README.md and accuracy_vs_speed.png from the files under metrics/<run>/.

Every number comes from a file a command wrote: `spacy evaluate` JSON (accuracy, dev and test),
the benchmark JSON (words/s, latency, size on disk), the data summary (`bertprod data`),
`spacy debug data` output, the transfer-set counts, wheel.json and metrics/timings.jsonl. Nothing
is typed by hand; a missing file is reported as missing. Tasks that did not run are left out.
"""

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Dict, List, Optional

FORMATS = [("torch", "torch fp32"), ("onnx-fp32", "ONNX fp32"), ("onnx-int8", "ONNX int8")]
TRIMMED = "ONNX int8, vocabulary trimmed to train"
# Kept share of the teacher's test score that the int8 distilled student should reach.
TARGET_SHARE = {"ner": 0.95, "textcat": 0.98}


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def task_spec(run: str, task: str) -> Dict:
    data = load(Path("corpus") / run / task / "data.json") or {}
    kind = data.get("task", task)
    if kind == "ner":
        return {"key": "ents_f", "name": "entity F1", "kind": kind, "data": data}
    if kind == "textcat_multilabel":
        return {"key": "cats_macro_f", "name": "macro F (multi-label)", "kind": kind, "data": data}
    return {"key": "cats_micro_f", "name": "accuracy", "kind": kind, "data": data}


def seeds_of(metrics: Path, model: str) -> List[int]:
    found = {
        int(m.group(1))
        for p in (metrics / "test").glob(f"{model}-s*-onnx-int8.json")
        if (m := re.search(r"-s(\d+)-", p.name))
    }
    return sorted(found)


def mean_std(values: List[float]) -> str:
    if not values:
        return "missing"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def data_section(run: str, task: str, spec: Dict) -> List[str]:
    data = spec["data"]
    lines = ["### Data", ""]
    if not data:
        return lines + [f"- missing corpus/{run}/{task}/data.json", ""]
    for name, info in data["files"].items():
        extra = "; ".join(f"{n:,} x {why}" for why, n in {**info["skipped"], **info["repaired"]}.items())
        lines.append(
            f"- {name}: `{info['path']}` ({info['format']}, {info['docs']:,} docs){' — ' + extra if extra else ''}"
        )
    if "dev_carved" in data:
        carve = data["dev_carved"]
        lines.append(
            f"- no dev file: a fixed {carve['share']:.0%} of train, stratified by {carve['stratified_by']} (seed "
            f"{carve['seed']}), is the dev split"
        )
    splits = ", ".join(f"{name} {', '.join(f'{v:,} {k}' for k, v in s.items())}" for name, s in data["splits"].items())
    lines.append(f"- after conversion: {splits}; {len(data['labels'])} labels")
    debug = Path("metrics") / run / task / "debug-data.txt"
    if debug.exists():
        findings = [
            line.strip()
            for line in debug.read_text(encoding="utf8").splitlines()
            if line.strip().startswith(("⚠", "✘"))
        ]
        summary = next(
            (
                line.strip()
                for line in reversed(debug.read_text(encoding="utf8").splitlines())
                if "checks passed" in line or "error" in line.lower()
            ),
            "",
        )
        lines.append(f"- `spacy debug data`: {summary or 'ran'}" + ("" if findings else ", no warnings"))
        lines += [f"  - {f}" for f in findings]
    transfer, labelled = (
        load(Path("metrics") / run / task / "transfer.json"),
        load(Path("metrics") / run / task / "teacher-label.json"),
    )
    if transfer:
        lines.append(
            f"- transfer set: {transfer['variants']:,} word-replacement variants of {transfer['train_docs']:,} "
            "training docs "
            f"({transfer['n_variants']} per doc, p={transfer['replace_prob']}, {transfer['n_neighbours']} embedding "
            "neighbours"
            f"{'' if transfer.get('replace_stop_words', True) else ', stop words kept'}) "
            f"+ {transfer['raw_texts']:,} raw texts = {transfer['transfer_docs']:,} docs"
        )
    if labelled:
        lines.append(
            f"- labelled once by the teacher `{labelled.get('teacher', '?')}` (temperature "
            f"{labelled['temperature']}): {labelled['docs']:,} docs"
        )
    return lines + [""]


def task_section(run: str, task: str, spec: Dict):
    metrics = Path("metrics") / run / task
    key, name = spec["key"], spec["name"]
    bench = load(metrics / "benchmark.json")
    speed = {Path(r["pipeline"]).as_posix(): r for r in bench["results"]} if bench else {}
    speed.update(
        frontier_speeds(
            load(metrics / "benchmark-frontier.json"), speed, f"training/{run}/{task}/distilled-s0-onnx-int8"
        )
    )
    teacher = load(metrics / "test" / "teacher-torch.json")
    teacher_score = teacher[key] if teacher else None
    teacher_speed = speed.get(f"training/{run}/{task}/teacher/model-best", {}).get("words_per_s", {}).get("median")
    rows, points = [], []
    for file, label, fmt, fmt_label, folder, kind, note in stage_rows(run, task, metrics):
        scores = load(metrics / "test" / f"{file}.json")
        row = speed.get(folder)
        if scores is None:
            rows.append(f"| {label} | {fmt_label} | missing {metrics / 'test' / (file + '.json')} | | | | | |")
            continue
        score = scores[key]
        wps = row["words_per_s"]["median"] if row else None
        size = row["size_on_disk_bytes"] / 1e6 if row else None
        p50 = row["latency_ms_batch1"]["p50"] if row else None
        share = f"{score / teacher_score:.1%}" if teacher_score else "n/a"
        rows.append(
            f"| {label} | {fmt_label} | {score:.4f} | {share} | "
            + (
                f"{wps:,.0f} | {wps / teacher_speed:.1f}x | {p50:.1f} | {size:.1f} |"
                if wps and teacher_speed
                else "n/a | | | |"
            )
        )
        points.append((kind, fmt, note, score, wps, size))
    lines = [f"## {task}: {name}", ""] + data_section(run, task, spec)
    lines += (
        [
            "### Every stage on the test split",
            "",
            f"| model | format | {name} | of teacher | words/s | vs teacher torch | p50 ms (batch 1) | size MB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        + rows
        + [""]
    )
    lines += seeds_section(metrics, spec, teacher_score)
    lines += verdicts(metrics, task, spec, teacher_score, bench)
    return lines, points


def teacher_encoder(base: str) -> str:
    """The folder name of the encoder the teacher was fine-tuned from (its config's paths.encoder)."""
    config = Path(base) / "teacher" / "model-best" / "config.cfg"
    if not config.exists():
        return "encoder unknown"
    from spacy.util import load_config

    encoder = load_config(config, interpolate=False)["paths"].get("encoder") or ""
    return Path(str(encoder)).name or "encoder unknown"


def stage_rows(run: str, task: str, metrics: Path):
    """(metrics file, model label, format, format label, pipeline folder, plot kind, plot note) for
    every stage of the table.

    The teacher and the seed-0 students in every format, then whatever the `frontier` workflow
    left: the shipped student with a trimmed vocabulary and the students of other depths
    (frontier<L>[-pruneffn<P>]-s0-onnx-{fp32,int8,int8-trim}), deepest first, full width first.
    """
    base = f"training/{run}/{task}"
    rows = []
    for model, label in (
        ("teacher", f"teacher ({teacher_encoder(base)})"),
        ("control-s0", "student, gold only (control), seed 0"),
        ("distilled-s0", "student, distilled, seed 0"),
    ):
        for fmt, fmt_label in FORMATS:
            folder = f"{base}/{model}/model-best" if fmt == "torch" else f"{base}/{model}-{fmt}"
            rows.append((f"{model}-{fmt}", label, fmt, fmt_label, folder, model.split("-s")[0], ""))
    if (metrics / "test" / "distilled-s0-onnx-int8-trim.json").exists():
        rows.append(
            (
                "distilled-s0-onnx-int8-trim",
                "student, distilled, seed 0",
                "onnx-int8-trim",
                TRIMMED,
                f"{base}/frontier/distilled-s0-onnx-int8-trim",
                "distilled",
                "",
            )
        )
    students = sorted(
        {
            (int(m.group(1)), int(m.group(2) or 0))
            for p in (metrics / "test").glob("frontier*-s0-onnx-*.json")
            if (m := re.match(r"frontier(\d+)(?:-pruneffn(\d+))?-s0-", p.name))
        },
        key=lambda s: (-s[0], s[1]),
    )
    for depth, pruned in students:
        name = f"frontier{depth}" + (f"-pruneffn{pruned}" if pruned else "")
        narrower = f", {pruned}% of FFN units pruned" if pruned else ""
        for fmt, fmt_label in FORMATS[1:] + [("onnx-int8-trim", TRIMMED)]:
            file = f"{name}-s0-{fmt}"
            if (metrics / "test" / f"{file}.json").exists():
                rows.append(
                    (
                        file,
                        f"{depth}-layer student{narrower}, distilled, seed 0",
                        fmt,
                        fmt_label,
                        f"{base}/frontier/{file}",
                        "frontier",
                        f"{depth} layers{narrower}, ",
                    )
                )
    return rows


def frontier_speeds(frontier_bench: Optional[Dict], main: Dict[str, Dict], anchor: str) -> Dict[str, Dict]:
    """The `frontier` workflow's benchmark rows on the main run's scale.

    Speeds compare only within one run: the frontier run benchmarks the shipped int8 student
    (`anchor`) next to the other depths and trimmed copies, so each frontier row's words/s is its ratio to the anchor in
    that run times the anchor's words/s in the main run.
    """
    if not frontier_bench or anchor not in main:
        return {}
    rows = {Path(r["pipeline"]).as_posix(): r for r in frontier_bench["results"]}
    if anchor not in rows:
        return {}
    scale = main[anchor]["words_per_s"]["median"] / rows[anchor]["words_per_s"]["median"]
    out = {}
    for folder, row in rows.items():
        if folder != anchor:
            out[folder] = {**row, "words_per_s": {**row["words_per_s"], "median": row["words_per_s"]["median"] * scale}}
    return out


def seeds_section(metrics: Path, spec: Dict, teacher_score: Optional[float]) -> List[str]:
    key = spec["key"]
    lines = [
        "### Control vs distilled over seeds (mean ± sample std)",
        "",
        "| student | format | seeds | dev | test | test, of teacher |",
        "|---|---|---|---|---|---|",
    ]
    for model, label in (("control", "gold only (control)"), ("distilled", "distilled")):
        seeds = seeds_of(metrics, model)
        for fmt, fmt_label in (FORMATS[0], FORMATS[2]):
            values = {}
            for split in ("dev", "test"):
                values[split] = [
                    s[key] for seed in seeds if (s := load(metrics / split / f"{model}-s{seed}-{fmt}.json"))
                ]
            share = (
                f"{statistics.mean(values['test']) / teacher_score:.1%}" if values["test"] and teacher_score else "n/a"
            )
            lines.append(
                f"| {label} | {fmt_label} | {','.join(map(str, seeds)) or 'none'} | {mean_std(values['dev'])} | "
                f"{mean_std(values['test'])} | {share} |"
            )
    return lines + [""]


def verdicts(metrics: Path, task: str, spec: Dict, teacher_score: Optional[float], bench) -> List[str]:
    key, name = spec["key"], spec["name"]
    out = []
    skipped = load(metrics / "frontier-skipped.json")
    if skipped:
        out.append(f"- Frontier students not built: {', '.join(skipped['skipped'])}. {skipped['reason']}")
    test = {
        m: [s[key] for seed in seeds_of(metrics, m) if (s := load(metrics / "test" / f"{m}-s{seed}-onnx-int8.json"))]
        for m in ("control", "distilled")
    }
    if test["distilled"] and teacher_score:
        share = statistics.mean(test["distilled"]) / teacher_score
        target = TARGET_SHARE[task]
        verdict = "met" if share >= target else f"MISSED by {target - share:.1%} of the teacher's score"
        out.append(
            f"- Target: the int8 distilled student keeps >= {target:.0%} of the teacher's test {name} "
            f"(mean of {len(test['distilled'])} seed(s)): {share:.1%} -> {verdict}."
        )
    if test["distilled"] and test["control"]:
        diff = statistics.mean(test["distilled"]) - statistics.mean(test["control"])
        n = min(len(test["distilled"]), len(test["control"]))
        if n >= 2:
            noise = max(statistics.stdev(test["distilled"]), statistics.stdev(test["control"]))
            if diff > 2 * noise:
                word = "beats"
            elif diff > noise:
                word = "beats, by less than twice the seed noise (a narrow margin),"
            else:
                word = "is within seed noise of" if diff > -noise else "is WORSE than"
            out.append(
                f"- Distillation (int8, test, {n} seeds): the distilled student {word} the gold-only control "
                f"({diff:+.5f}; the larger seed std is {noise:.5f})."
            )
        else:
            out.append(
                f"- Distillation (int8, test, 1 seed): {diff:+.4f} vs the gold-only control — one seed proves "
                "nothing; run the `seeds` workflow."
            )
    for path in sorted(metrics.glob("invariance-*.json")):
        inv = load(path)
        conditions = ", ".join(
            k[len("identical_") :].replace("_", " ") for k in inv if k.startswith("identical_") and k != "identical_all"
        )
        out.append(
            f"- Same text, same answer ({path.stem[len('invariance-') :]}, {inv['n_docs']} test texts): "
            f"{inv['identical_all']:.2%} of docs "
            f"get the same predictions alone (`nlp(text)`) as in every other setting ({conditions})."
        )
    wheel = load(metrics / "wheel.json")
    if wheel:
        out.append(
            f"- Installed wheel `{wheel.get('wheel', '?')}` ({wheel.get('wheel_bytes', 0) / 1e6:.1f} MB; fresh "
            "torch-free virtualenv, "
            f"{wheel.get('virtualenv_site_packages_bytes', 0) / 1e6:.0f} MB site-packages), `spacy evaluate` by "
            f"package name: {name} {wheel[key]:.4f}."
        )
    if bench:
        for result in bench["results"]:
            bare = result.get("bare_session")
            if bare and "distilled-s0-onnx-int8" in result["pipeline"]:
                out.append(
                    "- spaCy-side overhead (int8 distilled student): the pipeline reaches "
                    f"{bare['pipeline_share_of_bare']:.0%} of the bare InferenceSession's words/s on the same "
                    f"batches ({bare['wordpieces_per_s']:,.0f} real wordpieces/s; "
                    f"{bare.get('pad_fraction', 0):.1%} of the batch positions are padding)."
                )
    return out + [""]


def plot(all_points, names: Dict[str, str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_points), figsize=(6 * len(all_points), 4.5))
    axes = axes if len(all_points) > 1 else [axes]
    colors = {"teacher": "tab:blue", "control": "tab:gray", "distilled": "tab:orange", "frontier": "tab:green"}
    markers = {"torch": "o", "onnx-fp32": "s", "onnx-int8": "^", "onnx-int8-trim": "v"}
    for ax, (task, points) in zip(axes, all_points.items()):
        for kind, fmt, note, score, wps, size in points:
            if wps is None:
                continue
            ax.scatter(wps, score, c=colors[kind], marker=markers[fmt], s=40 + (size or 0))
            ax.annotate(
                note + (f"{size:.0f} MB" if size else ""),
                (wps, score),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("words/s (log, this machine)")
        ax.set_ylabel(names[task])
        ax.set_title(task)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in colors.items()]
    handles += [plt.Line2D([], [], color="black", marker=mk, linestyle="", label=f) for f, mk in markers.items()]
    axes[-1].legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def budget_warnings(entries) -> List[str]:
    """The training steps whose dev score was best at their last evaluation (scripts/timed.py --budget-var)."""
    rising = [e for e in entries if e.get("best_at_last_evaluation")]
    if not rising:
        return []
    lines = ["## Training budgets", ""]
    for e in rising:
        lines.append(
            f"- **{e['step']}**: the dev score was best at the last evaluation of its {e['max_steps']} steps, so it "
            f"was still rising when the budget stopped it: raise `--vars.{e['budget_var']}` and rerun it and the "
            "steps after it."
        )
    return lines + [""]


def data_title(run: str) -> str:
    """What the run was trained on, from its converted data (the title of a run on the user's own data)."""
    parts = []
    for task in ("ner", "textcat", "trf"):
        data = load(Path("corpus") / run / task / "data.json") or {}
        train = (data.get("files") or {}).get("train", {}).get("path")
        if train:
            parts.append(f"{data.get('task', task)} on {Path(train).parent.name}/{Path(train).name}")
    return "; ".join(parts) or run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    out_dir = Path("reports") / args.run
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# spacy_bertprod report: {args.title or data_title(args.run)} ({args.run} run)",
        "",
        "Generated by `scripts/report.py` from `metrics/`; accuracy from `spacy evaluate`, speed and size from "
        "`python -m spacy bertprod benchmark` (median of repeated passes, batch size 64, this machine's CPU cores); "
        "the frontier rows (other depths, trimmed vocabularies) come from the `frontier` workflow's own "
        "benchmark run, scaled through the shipped int8 student benchmarked in both runs.",
        "",
    ]
    all_points, names = {}, {}
    for task in ("ner", "textcat"):
        if not (Path("metrics") / args.run / task).exists():
            continue
        spec = task_spec(args.run, task)
        section, points = task_section(args.run, task, spec)
        lines += section
        all_points[task], names[task] = points, spec["name"]
    if (Path("metrics") / args.run / "trf").exists():
        from trf_report import trf_section

        lines += trf_section(args.run)
    timings = Path("metrics") / args.run / "timings.jsonl"
    if timings.exists():
        latest, entries = {}, {}
        for line in timings.read_text().splitlines():
            entry = json.loads(line)
            latest[entry["step"]], entries[entry["step"]] = entry["seconds"], entry
        lines += budget_warnings(entries.values())
        lines += ["## Wall time and peak memory per step (latest run of each)", ""]
        lines += ["| step | seconds | peak RSS GB |", "|---|---|---|"]
        for step, seconds in latest.items():
            peak = entries[step].get("peak_rss_gb")
            lines.append(f"| {step} | {seconds:.1f} | {'' if peak is None else f'{peak:.2f}'} |")
        for task in ("ner", "textcat", "trf"):
            total = sum(v for k, v in latest.items() if k.startswith(f"{task}-"))
            if total:
                lines.append(f"| total of the timed `{task}` steps | {total:.1f} | |")
        lines.append("")
    if all_points:
        lines[4:4] = ["![accuracy vs speed](accuracy_vs_speed.png)", ""]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    if all_points:
        plot(all_points, names, out_dir / "accuracy_vs_speed.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
