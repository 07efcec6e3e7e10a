"""The ONNX encoder alone: interleaved A/B timing of several pipelines' sessions, and where a
session spends its time by operator type (ONNX Runtime's profiler).

`benchmark` measures each pipeline in its own process, one after the other, so a machine whose
speed drifts (other tenants, turbo, a cron job) shows up as a difference between pipelines. Here
every round times each entry's encoder once, on exactly the batches its component builds, in
turn, and the medians over rounds are compared: the fair test of two graphs of the same model
(e.g. dynamic vs calibrated int8). An entry may name a label and a planner for the length
buckets: `cost` is the component's own (the default), `greedy` the simpler one it replaced
(sorted, each batch filled up to max_batch_items). Real wordpieces/s counts non-pad positions.
"""

import collections
import copy
import json
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

from ..errors import InvalidInput
from ..transformer_model import plan_buckets
from .benchmark import component_batches, time_batches


def greedy_buckets(lengths: List[int], max_batch_items: int) -> List[List[int]]:
    """Sorted by length, each batch filled up to the limit (the bucketing `cost` replaced)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets, current = [], []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > max_batch_items:
            buckets.append(current)
            current = []
        current.append(i)
    return buckets + ([current] if current else [])


PLANNERS = {"cost": plan_buckets, "greedy": greedy_buckets}


def parse_entry(entry: str) -> Tuple[str, str, str]:
    """'LABEL=PIPELINE:PLANNER', 'PIPELINE:PLANNER' or 'PIPELINE' -> (label, path, planner)."""
    label, _, rest = entry.partition("=") if "=" in entry else (entry, "", entry)
    path, planner = rest, "cost"
    if ":" in rest and rest.rsplit(":", 1)[1] in PLANNERS:
        path, planner = rest.rsplit(":", 1)
    return label or path, path, planner


def _prepare(entry: str, texts: List[str], batch_size: int) -> Tuple[str, Dict]:
    import spacy

    label, path, planner = parse_entry(entry)
    if not Path(path, "config.cfg").exists():
        raise InvalidInput(
            f"'{entry}': {path} is not a saved spaCy pipeline. Write PIPELINE or LABEL=PIPELINE:PLANNER "
            f"(PLANNER: {', '.join(sorted(PLANNERS))})."
        )
    nlp = spacy.load(path)
    session, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts], PLANNERS[planner])
    if session is None:
        raise InvalidInput(f"{path} has no ONNX transformer: compare compressed pipelines.")
    time_batches(session, batches)  # warm-up
    real = int(sum(b.attention_mask.sum() for b in batches))
    padded = int(sum(b.attention_mask.size for b in batches))
    run = {
        "pipeline": path,
        "planner": planner,
        "session": session,
        "batches": batches,
        "real": real,
        "pad_fraction": 1 - real / max(padded, 1),
    }
    return label, run


def compare_encoders(entries: List[str], texts: List[str], batch_size: int = 64, rounds: int = 7) -> Dict:
    """Interleaved timing of each entry's encoder (see the module docstring)."""
    if rounds < 1:
        raise InvalidInput(f"--rounds must be at least 1, not {rounds}.")
    runs = dict(_prepare(entry, texts, batch_size) for entry in entries)
    times: Dict[str, List[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            times[label].append(time_batches(run["session"], run["batches"]))
    first = next(iter(runs))
    first_speed = runs[first]["real"] / statistics.median(times[first])
    result: Dict = {"rounds": rounds, "pipelines": {}}
    for label, run in runs.items():
        median = statistics.median(times[label])
        result["pipelines"][label] = {
            "pipeline": run["pipeline"],
            "planner": run["planner"],
            "encoder_calls": len(run["batches"]),
            "pad_fraction": run["pad_fraction"],
            "wordpieces_per_s_median": run["real"] / median,
            "wordpieces_per_s_best": run["real"] / min(times[label]),
            "wordpieces_per_s_worst": run["real"] / max(times[label]),
            "vs_first": run["real"] / median / first_speed,
            "seconds": times[label],
        }
    return result


def format_comparison(result: Dict) -> str:
    rows = [
        "| entry | pipeline | buckets | encoder calls | pad share | real wordpieces/s (median; min-max) | x first |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in result["pipelines"].items():
        rows.append(
            f"| {label} | {r['pipeline']} | {r['planner']} | {r['encoder_calls']} | {r['pad_fraction']:.1%} | "
            f"{r['wordpieces_per_s_median']:,.0f}; {r['wordpieces_per_s_worst']:,.0f}-{r['wordpieces_per_s_best']:,.0f}"
            f" | {r['vs_first']:.2f} |"
        )
    return "\n".join(rows)


def profile_encoder(pipeline: str, texts: List[str], batch_size: int = 64) -> Dict:
    """Kernel time per operator type of the pipeline's session, with its own session options."""
    import spacy

    nlp = spacy.load(pipeline)
    onnx, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts])
    if onnx is None:
        raise InvalidInput(f"{pipeline} has no ONNX transformer: profile a compressed pipeline.")
    time_batches(onnx, batches[:3])  # warm-up, unprofiled
    with tempfile.TemporaryDirectory() as tmp:
        profiled = copy.deepcopy(onnx)  # same model bytes and options, a session of its own
        profiled.profile_prefix = str(Path(tmp) / "ort")
        session = profiled.session
        wall = time_batches(profiled, batches)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values()) or 1
    ops = {op: {"s": us / 1e6, "share": us / total} for op, us in by_op.most_common()}
    return {"pipeline": pipeline, "wall_s": wall, "kernel_s": total / 1e6, "ops": ops}


def format_profile(result: Dict) -> str:
    rows = [
        f"{result['pipeline']}: {result['wall_s']:.2f} s wall, {result['kernel_s']:.2f} s in kernels",
        "| operator | seconds | share |",
        "|---|---|---|",
    ]
    rows += [f"| {op} | {row['s']:.3f} | {row['share']:.1%} |" for op, row in result["ops"].items()]
    return "\n".join(rows)
