"""The multi-task (`trf` workflow) section of reports/<run>/README.md, from metrics/<run>/trf/ only.

    python scripts/trf_report.py --run ewt     (prints the section; scripts/report.py includes it)

Every metric of the pipeline side by side (TAG, POS, MORPH, LEMMA, UAS, LAS, sentence F, ENTS F) for
the torch teacher, its int8 copy, the control and distilled int8 students (mean ± std over the seeds
that ran) and spaCy's CNN pipeline; the done-when checks of the workflow (int8 teacher within 0.5
points of torch, distilled student >= 98% of the teacher on the token and tree metrics and >= 95% on
entities, above the control, at least the CNN's words/s); speed, size and memory from the benchmark;
the wheel check. A missing file is reported as missing, never filled in.
"""

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Dict, List, Optional

METRICS = [
    ("tag_acc", "TAG"), ("pos_acc", "POS"), ("morph_acc", "MORPH"), ("lemma_acc", "LEMMA"),
    ("dep_uas", "UAS"), ("dep_las", "LAS"), ("sents_f", "SENT F"), ("ents_f", "ENTS F"),
]  # fmt: skip
# Share of the teacher's test score the int8 distilled student keeps: entities are the noisiest metric
KEEP = {key: 0.95 if key == "ents_f" else 0.98 for key, _ in METRICS if key != "sents_f"}
INT8_TOLERANCE = 0.5  # points, int8 teacher vs torch teacher


def load(path: Path) -> Optional[Dict]:
    return json.loads(path.read_text()) if path.exists() else None


def scores(metrics: Path, split: str, name: str) -> Optional[Dict[str, float]]:
    """A `spacy evaluate` file's metrics in points (missing ones as None)."""
    data = load(metrics / split / f"{name}.json")
    if data is None:
        return None
    return {key: None if data.get(key) is None else 100 * data[key] for key, _ in METRICS}


def seeds(metrics: Path, model: str) -> List[int]:
    found = (re.search(rf"^{model}-s(\d+)-onnx-int8\.json$", p.name) for p in (metrics / "test").glob("*.json"))
    return sorted(int(m.group(1)) for m in found if m)


def seed_scores(metrics: Path, split: str, model: str) -> Dict[str, List[float]]:
    """Per metric, the int8 student's score of every seed that ran."""
    out: Dict[str, List[float]] = {key: [] for key, _ in METRICS}
    for seed in seeds(metrics, model):
        for key, value in (scores(metrics, split, f"{model}-s{seed}-onnx-int8") or {}).items():
            if value is not None:
                out[key].append(value)
    return out


def cell(values) -> str:
    if values is None or values == []:
        return "–"
    if isinstance(values, list):
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
    return f"{values:.2f}"


def accuracy_table(metrics: Path, split: str) -> List[str]:
    rows = [
        ("teacher, torch", "teacher-torch", scores(metrics, split, "teacher-torch")),
        ("teacher, ONNX int8", "teacher-onnx-int8", scores(metrics, split, "teacher-onnx-int8")),
    ]
    for model, label in (("control", "control student"), ("distilled", "distilled student")):
        n = len(seeds(metrics, model))
        rows.append((f"{label}, ONNX int8 ({n} seed{'s' if n != 1 else ''})", "", seed_scores(metrics, split, model)))
    rows.append(("spaCy CNN (efficiency config)", "cnn", scores(metrics, split, "cnn")))
    lines = ["| pipeline | " + " | ".join(label for _, label in METRICS) + " |"]
    lines.append("|---" * (len(METRICS) + 1) + "|")
    for label, name, values in rows:
        if values is None:
            lines.append(f"| {label} | missing {split}/{name}.json |" + " |" * (len(METRICS) - 1))
            continue
        lines.append(f"| {label} | " + " | ".join(cell(values.get(key)) for key, _ in METRICS) + " |")
    return lines + [""]


def mean(values) -> Optional[float]:
    if isinstance(values, list):
        return statistics.mean(values) if values else None
    return values


def int8_verdict(metrics: Path) -> List[str]:
    torch, int8 = scores(metrics, "test", "teacher-torch"), scores(metrics, "test", "teacher-onnx-int8")
    if torch is None or int8 is None:
        return ["- int8 teacher vs torch: missing test/teacher-torch.json or test/teacher-onnx-int8.json"]
    gaps = {label: int8[key] - torch[key] for key, label in METRICS if torch[key] is not None}
    worst = min(gaps, key=lambda label: gaps[label])
    ok = all(abs(gap) <= INT8_TOLERANCE for gap in gaps.values())
    detail = ", ".join(f"{label} {gap:+.2f}" for label, gap in gaps.items())
    return [f"- int8 teacher within {INT8_TOLERANCE} points of torch on every test metric: **{'yes' if ok else 'no'}** "
            f"(largest drop {worst} {gaps[worst]:+.2f}; {detail})"]  # fmt: skip


def student_verdicts(metrics: Path) -> List[str]:
    teacher = scores(metrics, "test", "teacher-torch")
    distilled, control = seed_scores(metrics, "test", "distilled"), seed_scores(metrics, "test", "control")
    if teacher is None or not any(distilled.values()):
        return ["- distilled student vs teacher: missing test/teacher-torch.json or distilled-s*-onnx-int8.json"]
    lines = []
    for key, share in KEEP.items():
        label = dict(METRICS)[key]
        kept = mean(distilled[key]) / teacher[key] if teacher[key] else None
        above = mean(control[key]) is not None and mean(distilled[key]) > mean(control[key])
        if kept is None:
            continue
        lines.append(
            f"- {label}: distilled int8 keeps **{kept:.1%}** of the teacher (target {share:.0%}: "
            f"{'met' if kept >= share else 'not met'}); {'above' if above else 'not above'} the control "
            f"({cell(distilled[key])} vs {cell(control[key])})"
        )
    return lines


def speed_rows(bench: Optional[Dict]) -> List[str]:
    if bench is None:
        return ["- missing benchmark.json (trf-benchmark)", ""]
    lines = ["| pipeline | words/s (median) | × torch teacher | latency p50 ms (1 doc) | size MB | peak RSS MB |"]
    lines.append("|---|---|---|---|---|---|")
    results = bench["results"]
    teacher = next((r for r in results if r["pipeline"].endswith("teacher/model-best")), None)
    for row in results:
        wps = row["words_per_s"]["median"]
        ratio = f"{wps / teacher['words_per_s']['median']:.1f}×" if teacher else "–"
        latency = row.get("latency_ms_batch1", {}).get("p50")
        lines.append(
            f"| {row['pipeline']} | {wps:,.0f} | {ratio} | {'–' if latency is None else f'{latency:.1f}'} | "
            f"{row['size_on_disk_bytes'] / 1e6:.0f} | {row.get('peak_rss_mb', 0):.0f} |"
        )
    return lines + [""]


def cnn_verdict(bench: Optional[Dict]) -> List[str]:
    if bench is None:
        return []
    wps = {row["pipeline"]: row["words_per_s"]["median"] for row in bench["results"]}
    cnn = next((v for k, v in wps.items() if k.rstrip("/").endswith("cnn/model-best")), None)
    students = {k: v for k, v in wps.items() if "distilled" in k}
    if cnn is None or not students:
        return ["- student vs spaCy CNN words/s: the benchmark lacks the CNN or a distilled student"]
    name, fastest = max(students.items(), key=lambda kv: kv[1])
    return [f"- fastest distilled student ({name}) at ≥ spaCy CNN words/s: **{'yes' if fastest >= cnn else 'no'}** "
            f"({fastest:,.0f} vs {cnn:,.0f} words/s, {fastest / cnn:.2f}×)"]  # fmt: skip


def data_lines(run: str) -> List[str]:
    data = load(Path("corpus") / run / "trf" / "data.json")
    if data is None:
        return [f"- missing corpus/{run}/trf/data.json", ""]
    lines = []
    for split, info in data["files"].items():
        notes = "; ".join(f"{n:,} × {why}" for why, n in {**info["skipped"], **info["repaired"]}.items())
        sents = data["splits"][split]["sentences"]
        line = f"- {split}: `{info['path']}` ({info['format']}), {sents:,} sentences"
        lines.append(line + (f"; {notes}" if notes else ""))
    ner = data.get("ner")
    if ner:
        sizes = ", ".join(f"{k} {v.get('docs', v) if isinstance(v, dict) else v:,}" for k, v in ner["splits"].items())
        lines.append(f"- entities: {', '.join(info['path'] for info in ner['files'].values())} ({sizes} docs)")
    return lines + [""]


def wheel_lines(metrics: Path) -> List[str]:
    wheel = load(metrics / "wheel.json")
    if wheel is None:
        return ["- wheel: missing wheel.json (trf-package)", ""]
    got = ", ".join(f"{label} {100 * wheel[key]:.2f}" for key, label in METRICS if wheel.get(key) is not None)
    return [f"- wheel `{wheel['wheel']}` ({wheel['wheel_bytes'] / 1e6:.1f} MB), installed without torch "
            f"({wheel['virtualenv_site_packages_bytes'] / 1e6:.0f} MB of site-packages), `spacy evaluate` by name "
            f"on test: {got}", ""]  # fmt: skip


def trf_section(run: str) -> List[str]:
    metrics = Path("metrics") / run / "trf"
    bench = load(metrics / "benchmark.json")
    lines = ["## trf: tagger, morphologizer, trainable_lemmatizer, parser, ner on one transformer", "", "### Data", ""]
    lines += data_lines(run)
    for split in ("test", "dev"):
        lines += [f"### Accuracy on {split} (`spacy evaluate`, points)", ""] + accuracy_table(metrics, split)
    lines += ["### Checks (test)", ""] + int8_verdict(metrics) + student_verdicts(metrics) + cnn_verdict(bench)
    lines += ["", "### Speed (one `bertprod benchmark` run, each pipeline in its own process)", ""]
    lines += ["`stock` (spaCy's spacy-transformers accuracy pipeline) and `curated` (its spacy-curated-transformers "
              "twin) carry the teacher's encoder and the same heads, trained only a few steps (`trf-peers`): they "
              "are here for their words/s, not their accuracy.", ""]  # fmt: skip
    return lines + speed_rows(bench) + ["### Package", ""] + wheel_lines(metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    print("\n".join(trf_section(parser.parse_args().run)))


if __name__ == "__main__":
    main()
