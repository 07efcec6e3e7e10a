"""POST /v1/embed under load, with API keys: speed against in-process, same vectors, refusals.

    python reports/embeddings/service.py PIPELINE --data TEXTS --output OUT.json

TEXTS: one text per line, .jsonl or .spacy, or an STS-B csv (its distinct sentences).

Starts `bertprod serve PIPELINE --api-key-env` on a free port; for 8 and 1 texts per request runs
`bertprod loadtest --endpoint embed` with 32 keyed clients (and the same texts in-process), while
a thread sends requests without a key (and with a wrong one) the whole time. A benchmark, not a
test: nothing is asserted; the JSON says what happened.
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from serving_benchmark import free_port, wait_ready  # noqa: E402  (the serving report's helpers)


def intruder(url: str, stop: threading.Event, counts: dict) -> None:
    """Requests without a key and with a wrong key, one after the other, until stopped."""
    body = json.dumps({"texts": ["who am i"]}).encode()
    for n in range(10**9):
        if stop.is_set():
            return
        headers = {"content-type": "application/json"}
        if n % 2:
            headers["authorization"] = "Bearer not-the-key-0123456789"
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/v1/embed", data=body, headers=headers))
            counts["accepted"] = counts.get("accepted", 0) + 1
        except urllib.error.HTTPError as err:
            counts[str(err.code)] = counts.get(str(err.code), 0) + 1
        time.sleep(0.05)


def wait_all_workers(url: str, workers: int, timeout: float = 300) -> None:
    """Until `workers` distinct worker processes have answered /health as ready (each new
    connection may land on any worker), so no timed request meets a worker still loading."""
    ready, deadline = set(), time.time() + timeout
    while len(ready) < workers:
        if time.time() > deadline:
            raise RuntimeError(f"only {len(ready)} of {workers} workers became ready at {url}")
        try:
            with urllib.request.urlopen(url + "/health") as r:
                ready.add(json.loads(r.read())["pid"])
        except OSError:
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="Passes over the texts per run (a longer measurement)")
    parser.add_argument("--workers", type=int, default=1, help="`bertprod serve --workers`")
    parser.add_argument("--per-request", default="8,1", help="texts per request, one run each")
    args = parser.parse_args()
    if args.data.endswith(".csv"):
        import csv
        import tempfile

        with open(args.data, newline="", encoding="utf8") as f:
            sentences = sorted({s for row in csv.reader(f) for s in row[:2]})
        lines = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf8")
        lines.write("\n".join(s.replace("\n", " ") for s in sentences) + "\n")
        lines.close()
        args.data = lines.name
    key = secrets.token_urlsafe(32)
    env = {**os.environ, "EMBED_KEYS": key}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "spacy", "bertprod", "serve", args.pipeline, "--port", str(port),
         "--api-key-env", "EMBED_KEYS", "--log-level", "warning", "--workers", str(args.workers)],
        env=env,
    )  # fmt: skip
    results = {"pipeline": args.pipeline, "concurrency": args.concurrency, "workers": args.workers, "runs": {}}
    try:
        wait_ready(url)
        wait_all_workers(url, args.workers)
        for per_request in [int(n) for n in args.per_request.split(",")]:
            stop, counts = threading.Event(), {}
            thread = threading.Thread(target=intruder, args=(url, stop, counts))
            thread.start()
            out = subprocess.run(
                [sys.executable, "-m", "spacy", "bertprod", "loadtest", url, "--data", args.data, "--limit",
                 str(args.limit), "--endpoint", "embed", "--api-key-env", "EMBED_KEYS", "--concurrency",
                 str(args.concurrency), "--texts-per-request", str(per_request), "--pipeline", args.pipeline,
                 "--repeats", str(args.repeats)],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            stop.set()
            thread.join()
            run = json.loads(out.stdout[out.stdout.index("{") :])
            run["requests_without_a_valid_key"] = counts
            results["runs"][f"{per_request}_texts_per_request"] = run
            print(per_request, json.dumps({k: run[k] for k in ("texts_per_s", "in_process_texts_per_s", "errors")}))
            print("   service/in-process", run["service_vs_in_process"], run["agreement"], counts, flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
