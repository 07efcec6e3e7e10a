"""A/B the bare ONNX sessions of several pipelines (or bucketings), interleaved in one process.

    python scripts/compare_sessions.py PIPELINE_A PIPELINE_B ... --data test.spacy [--rounds 7]
    python scripts/compare_sessions.py "before=PIPELINE_A:greedy" "after=PIPELINE_B:cost" --data test.spacy

`bertprod benchmark` measures each pipeline in its own process, one after the other, so a
machine whose speed drifts (other tenants, turbo, a cron job) shows up as a difference between
pipelines. Here every round times each entry's encoder once on exactly the batches its
component builds, in turn, and the medians over rounds are compared: the fair test of two
graphs of the same model (e.g. dynamic vs calibrated int8). An entry may name a label and a
planner for the length buckets: `cost` is the component's own (the default), `greedy` the one
before issue 11 (sorted, each batch filled up to max_batch_items). Real wordpieces/s counts
non-pad positions only.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import List

import spacy

from spacy_bertprod.benchmark import component_batches, time_batches
from spacy_bertprod.texts import read_texts
from spacy_bertprod.transformer_model import plan_buckets


def greedy_buckets(lengths: List[int], max_batch_items: int) -> List[List[int]]:
    """The bucketing before issue 11: sorted by length, each batch filled up to the limit."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    buckets, current = [], []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > max_batch_items:
            buckets.append(current)
            current = []
        current.append(i)
    return buckets + ([current] if current else [])


PLANNERS = {"cost": plan_buckets, "greedy": greedy_buckets}


def parse_entry(entry: str):
    """'LABEL=PIPELINE:PLANNER', 'PIPELINE:PLANNER' or 'PIPELINE' -> (label, path, planner)."""
    label, _, rest = entry.partition("=") if "=" in entry else (entry, "", entry)
    path, planner = rest, "cost"
    if ":" in rest and rest.rsplit(":", 1)[1] in PLANNERS:
        path, planner = rest.rsplit(":", 1)
    return label or path, path, planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entries", nargs="+", help=f"PIPELINE, or LABEL=PIPELINE:PLANNER with PLANNER in {sorted(PLANNERS)}")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    texts = read_texts(args.data)
    runs = {}
    for entry in args.entries:
        label, path, planner = parse_entry(entry)
        if not Path(path, "config.cfg").exists():
            sys.exit(f"'{entry}': {path} is not a saved spaCy pipeline. Write PIPELINE or LABEL=PIPELINE:PLANNER ({sorted(PLANNERS)}).")
        nlp = spacy.load(path)
        session, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts], args.batch_size, PLANNERS[planner])
        if session is None:
            sys.exit(f"{path} has no ONNX transformer: compare compressed pipelines.")
        time_batches(session, batches)  # warm-up
        real = int(sum(b.attention_mask.sum() for b in batches))
        padded = int(sum(b.attention_mask.size for b in batches))
        runs[label] = {"pipeline": path, "planner": planner, "session": session, "batches": batches,
                       "real_wordpieces": real, "pad_fraction": 1 - real / max(padded, 1)}
    times = {label: [] for label in runs}
    for _ in range(args.rounds):
        for label, run in runs.items():
            times[label].append(time_batches(run["session"], run["batches"]))
    first = next(iter(runs))
    result = {"data": str(args.data), "rounds": args.rounds, "pipelines": {}}
    print("| entry | pipeline | buckets | encoder calls | pad share | real wordpieces/s (median; min-max) | x first |")
    print("|---|---|---|---|---|---|---|")
    for label, run in runs.items():
        median = statistics.median(times[label])
        vs_first = statistics.median(times[first]) / median * run["real_wordpieces"] / runs[first]["real_wordpieces"]
        result["pipelines"][label] = {
            "pipeline": run["pipeline"], "planner": run["planner"], "encoder_calls": len(run["batches"]),
            "pad_fraction": run["pad_fraction"],
            "wordpieces_per_s_median": run["real_wordpieces"] / median,
            "wordpieces_per_s_best": run["real_wordpieces"] / min(times[label]),
            "vs_first": vs_first,
            "seconds": times[label],
        }
        print(f"| {label} | {run['pipeline']} | {run['planner']} | {len(run['batches'])} | {run['pad_fraction']:.1%} | "
              f"{run['real_wordpieces'] / median:,.0f}; {run['real_wordpieces'] / max(times[label]):,.0f}-{run['real_wordpieces'] / min(times[label]):,.0f} | {vs_first:.2f} |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
