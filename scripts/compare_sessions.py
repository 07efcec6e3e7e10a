"""A/B the bare ONNX sessions of several pipelines, interleaved in one process.

    python scripts/compare_sessions.py PIPELINE_A PIPELINE_B ... --data test.spacy [--rounds 7]

`bertprod benchmark` measures each pipeline in its own process, one after the other, so a
machine whose speed drifts (other tenants, turbo, a cron job) shows up as a difference between
pipelines. Here every round times each pipeline's encoder once on exactly the batches its
component builds, in turn, and the medians over rounds are compared: the fair test of two
graphs of the same model (e.g. dynamic vs calibrated int8).
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

import spacy

from spacy_bertprod.benchmark import component_batches, time_batches
from spacy_bertprod.texts import read_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipelines", nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    texts = read_texts(args.data)
    runs = {}
    for path in args.pipelines:
        nlp = spacy.load(path)
        session, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts], args.batch_size)
        if session is None:
            sys.exit(f"{path} has no ONNX transformer: compare compressed pipelines.")
        time_batches(session, batches)  # warm-up
        runs[path] = (session, batches, int(sum(b.attention_mask.sum() for b in batches)))
    times = {path: [] for path in runs}
    for _ in range(args.rounds):
        for path, (session, batches, _) in runs.items():
            times[path].append(time_batches(session, batches))
    first = args.pipelines[0]
    result = {"data": str(args.data), "rounds": args.rounds, "pipelines": {}}
    for path, (_, _, n_wordpieces) in runs.items():
        median = statistics.median(times[path])
        result["pipelines"][path] = {
            "wordpieces_per_s_median": n_wordpieces / median,
            "wordpieces_per_s_best": n_wordpieces / min(times[path]),
            "vs_first": statistics.median(times[first]) / median,
            "seconds": times[path],
        }
        print(f"{path}: {n_wordpieces / median:,.0f} wordpieces/s (median of {args.rounds}), {statistics.median(times[first]) / median:.3f}x the first")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
