"""Where an ONNX pipeline's encoder spends its time, by operator type (ONNX Runtime's profiler).

    python scripts/ort_profile.py PIPELINE --data test.spacy [--output ops.json]

Runs the pipeline's session once, with the component's own session options and on exactly the
batches its component builds, and sums ONNX Runtime's kernel times per operator type.
"""
import argparse
import collections
import copy
import json
import sys
import tempfile
from pathlib import Path

import spacy

from spacy_bertprod.benchmark import component_batches, time_batches
from spacy_bertprod.texts import read_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    texts = read_texts(args.data)
    nlp = spacy.load(args.pipeline)
    onnx, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts], 64)
    if onnx is None:
        sys.exit(f"{args.pipeline} has no ONNX transformer.")
    time_batches(onnx, batches[:3])  # warm-up, unprofiled
    with tempfile.TemporaryDirectory() as tmp:
        profiled = copy.deepcopy(onnx)  # same model bytes and options, a session of its own
        profiled.profile_prefix = str(Path(tmp) / "ort")
        session = profiled.session
        wall = time_batches(profiled, batches)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    result = {"pipeline": args.pipeline, "wall_s": wall, "kernel_s": total / 1e6,
              "ops": {op: {"s": us / 1e6, "share": us / total} for op, us in by_op.most_common()}}
    print(f"{args.pipeline}: {wall:.2f} s wall, {total / 1e6:.2f} s in kernels")
    print("| operator | seconds | share |\n|---|---|---|")
    for op, row in result["ops"].items():
        print(f"| {op} | {row['s']:.3f} | {row['share']:.1%} |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
