"""Measure the service and the corpus job on this machine (issue 10's numbers), into a report.

    python reports/serving/serving_benchmark.py PIPELINE --data TEXTS --output reports/serving

1. For each (workers, texts per request): start `bertprod serve PIPELINE` on a free port, wait for
   /health, run `bertprod loadtest` with --concurrency clients (and in-process `nlp.pipe` on the
   same texts for comparison), stop the service (SIGTERM) and keep its /metrics.
2. `bertprod apply` on the same texts (as JSONL) with --engine local and ray, 1 and 2 workers:
   docs/s, and whether every engine wrote the same shards.
Writes OUTPUT/serving.json and OUTPUT/README.md. A benchmark, not a test: nothing is asserted.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health") as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


def serve_and_load(
    pipeline: str, data: str, limit: int, workers: int, per_request: int, concurrency: int, repeats: int
) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spacy",
            "bertprod",
            "serve",
            pipeline,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "load.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "spacy",
                    "bertprod",
                    "loadtest",
                    url,
                    "--data",
                    data,
                    "--limit",
                    str(limit),
                    "--concurrency",
                    str(concurrency),
                    "--texts-per-request",
                    str(per_request),
                    "--repeats",
                    str(repeats),
                    "--pipeline",
                    pipeline,
                    "--report",
                    str(out),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            result = json.loads(out.read_text())
        with urllib.request.urlopen(url + "/metrics") as r:
            metrics = r.read().decode()
        result["batch_docs_mean"] = _mean(metrics, "bertprod_batch_docs")
        result["workers"] = workers
    finally:
        server.send_signal(signal.SIGTERM)
        result_code = server.wait(timeout=120)
    result["server_exit_code"] = result_code
    return result


def _mean(metrics: str, name: str):
    values = {}
    for line in metrics.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(name + suffix + " "):
                values[suffix] = float(line.split()[1])
    return values["_sum"] / values["_count"] if values.get("_count") else None


def apply_runs(pipeline: str, data: str, limit: int, shard_size: int) -> list:
    sys.path.insert(0, str(REPO))
    from spacy_bertprod.texts import read_texts

    texts = read_texts(Path(data), limit)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text(
            "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8"
        )
        reference = None
        for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            out = Path(tmp) / f"{engine}-{workers}"
            started = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "spacy",
                    "bertprod",
                    "apply",
                    pipeline,
                    str(corpus),
                    str(out),
                    "--engine",
                    engine,
                    "--workers",
                    str(workers),
                    "--shard-size",
                    str(shard_size),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "RAY_ADDRESS": ""},
            )
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                runs.append({"engine": engine, "workers": workers, "error": proc.stdout[-2000:] + proc.stderr[-2000:]})
                continue
            result = json.loads(proc.stdout[proc.stdout.index("{\n") :])
            shards = {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")}
            reference = reference or shards
            runs.append(
                {
                    "engine": engine,
                    "workers": workers,
                    "docs": result["records"],
                    "docs_per_s": result["docs_per_s_after_first_shard"],
                    "docs_per_s_incl_startup": result["docs_per_s"],
                    "threads_per_worker": result["threads_per_worker"],
                    "wall_s_with_startup": wall,
                    "same_shards_as_local_1": shards == reference,
                }
            )
            shutil.rmtree(out)
    return runs


def markdown(report: dict) -> str:
    lines = [
        f"# Serving and corpus annotation — {report['pipeline']}",
        "",
        f"{report['machine']}; {report['texts']} texts from `{report['data']}`; `python "
        "reports/serving/serving_benchmark.py` "
        f"({report['concurrency']} concurrent clients on loopback, lean asyncio HTTP/1.1 client on the same machine).",
        "",
        "| workers | texts/request | words/s | in-process words/s | service / in-process | p50 / p95 / p99 ms | mean "
        "texts per micro-batch | statuses | same entities | same top cat |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["service"]:
        a, lat = r["agreement"], r["latency_ms"]
        top = f"{a['same_top_cat']:.2%}" if a["same_top_cat"] is not None else "n/a"
        lines.append(
            f"| {r['workers']} | {r['texts_per_request']} | {r['words_per_s']:,.0f} | "
            f"{r['in_process_words_per_s']:,.0f} | "
            f"{r['service_vs_in_process']:.0%} | {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} | "
            f"{r['batch_docs_mean'] or 0:.1f} | "
            f"{r['statuses']} | {a['same_ents']:.2%} | {top} |"
        )
    lines += [
        "",
        f"`bertprod apply` on {report['apply'][0].get('docs', '?')} texts from `{report['apply_data']}` (JSONL, "
        f"shards of {report['shard_size']}):",
        "",
        "| apply engine | workers × threads | docs/s once loaded (after the first shard) | docs/s incl. start-up | "
        "wall s incl. start-up | shards identical to local×1 |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["apply"]:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['workers']} | failed | | | |")
        else:
            lines.append(
                f"| {r['engine']} | {r['workers']} × {r['threads_per_worker']} | {r['docs_per_s'] or 0:,.0f} | "
                f"{r['docs_per_s_incl_startup']:,.0f} | "
                f"{r['wall_s_with_startup']:.1f} | {r['same_shards_as_local_1']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--texts-per-request", default="1,8")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--apply-data", help="Texts for the apply runs (default: --data)")
    parser.add_argument("--apply-limit", type=int, default=20000)
    parser.add_argument("--shard-size", type=int, default=1000)
    args = parser.parse_args()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "unknown CPU",
    )
    report = {
        "pipeline": args.pipeline,
        "data": args.data,
        "texts": args.limit,
        "concurrency": args.concurrency,
        "machine": f"{cpu}, {os.cpu_count()} cores",
        "service": [],
        "apply": [],
        "shard_size": args.shard_size,
    }
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        for per_request in [int(n) for n in args.texts_per_request.split(",")]:
            print(f"service: {workers} worker(s), {per_request} text(s) per request", flush=True)
            report["service"].append(
                serve_and_load(
                    args.pipeline, args.data, args.limit, workers, per_request, args.concurrency, args.repeats
                )
            )
    print("apply: local and ray, 1 and 2 workers", flush=True)
    report["apply"] = apply_runs(args.pipeline, args.apply_data or args.data, args.apply_limit, args.shard_size)
    report["apply_data"] = args.apply_data or args.data
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "serving.json").write_text(json.dumps(report, indent=2), encoding="utf8")
    (args.output / "README.md").write_text(markdown(report), encoding="utf8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
