"""ONNX Runtime settings for a compressed pipeline, by measurement (issue 11, item 2).

    python reports/runtime_settings/runtime_settings.py PIPELINE --data TEXTS [--limit 3000] [--output DIR]

Each variant runs in a fresh process: the pipeline is loaded with config overrides
(`components.<transformer>.model.intra_op_num_threads`, `.allow_spinning`) and times
`nlp.pipe` (median of passes after a warm-up), with n_process 1 or 2, plus batch-1 latency.
Writes DIR/runtime_settings.json and prints a table. A benchmark: nothing is asserted.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

VARIANTS = [
    # name, intra-op threads, spinning, n_process
    ("1 process x 2 threads, spinning (ORT default)", 2, True, 1),
    ("1 process x 2 threads, no spinning", 2, False, 1),
    ("1 process x 1 thread", 1, False, 1),
    ("2 processes x 1 thread, spinning", 1, True, 2),
    ("2 processes x 1 thread, no spinning", 1, False, 2),
]


def transformer_name(path: str) -> str:
    from spacy.util import load_config

    config = load_config(Path(path) / "config.cfg")
    for name, block in config["components"].items():
        if block.get("model", {}).get("@architectures") == "spacy_bertprod.OnnxTransformer.v1":
            return name
    raise ValueError(f"{path} has no spacy_bertprod.OnnxTransformer.v1 component: compress it first.")


def measure(path: str, texts, threads: int, spinning: bool, n_process: int, passes: int, queue) -> None:
    import spacy

    name = transformer_name(path)
    overrides = {
        f"components.{name}.model.intra_op_num_threads": threads,
        f"components.{name}.model.allow_spinning": spinning,
    }
    nlp = spacy.load(path, config=overrides)
    words = sum(len(d) for d in nlp.tokenizer.pipe(texts))
    list(nlp.pipe(texts[:256], batch_size=64, n_process=n_process))
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=64, n_process=n_process):
            pass
        times.append(time.perf_counter() - started)
    latencies = []
    if n_process == 1:
        for text in texts[:200]:
            started = time.perf_counter()
            nlp(text)
            latencies.append((time.perf_counter() - started) * 1000)
    queue.put(
        {
            "words_per_s": words / statistics.median(times),
            "runs": [words / t for t in times],
            "p50_ms": statistics.median(latencies) if latencies else None,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline")
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from spacy_bertprod.texts import read_texts

    texts = read_texts(Path(args.data), args.limit)
    context = multiprocessing.get_context("spawn")
    rows = []
    for label, threads, spinning, n_process in VARIANTS:
        queue = context.Queue()
        proc = context.Process(
            target=measure, args=(args.pipeline, texts, threads, spinning, n_process, args.passes, queue)
        )
        proc.start()
        result = queue.get()
        proc.join()
        rows.append(
            {
                "variant": label,
                "intra_op_num_threads": threads,
                "allow_spinning": spinning,
                "n_process": n_process,
                **result,
            }
        )
        print(
            f"{label}: {result['words_per_s']:,.0f} words/s"
            + (f", batch-1 p50 {result['p50_ms']:.1f} ms" if result["p50_ms"] else ""),
            flush=True,
        )
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "unknown CPU",
    )
    report = {
        "pipeline": args.pipeline,
        "data": args.data,
        "texts": len(texts),
        "machine": f"{cpu}, {os.cpu_count()} cores",
        "variants": rows,
    }
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "runtime_settings.json").write_text(json.dumps(report, indent=2), encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
