"""The word-elimination table: accuracy and speed per retention schedule.

    python reports/word_elimination/summary.py METRICS_DIR BENCHMARK.json [COMPRESS_REPORT.json ...]

Reads METRICS_DIR/<dev|test>/<name>.json (`scripts/evaluate.py`; accuracy = cats_micro_f), the
`bertprod benchmark` report (pipeline words/s and the bare ONNX session's, i.e. the encoder alone)
and the compress reports (the schedule); the first benchmarked pipeline is the reference.
"""

import argparse
import json
from pathlib import Path


def accuracy(metrics: Path, split: str, name: str) -> str:
    path = metrics / split / f"{name}.json"
    return f"{float(json.loads(path.read_text(encoding='utf8'))['cats_micro_f']) * 100:.2f}" if path.exists() else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("compress_reports", type=Path, nargs="*")
    args = parser.parse_args()
    shares = {}
    for path in args.compress_reports:
        report = json.loads(path.read_text(encoding="utf8"))
        name = path.stem.removeprefix("compress-")
        shares[name] = (report.get("word_retention") or {}).get("shares")
    results = json.loads(args.benchmark.read_text(encoding="utf8"))["results"]
    first = results[0]
    print(
        "| pipeline | word retention | dev / test accuracy | pipeline words/s | x "
        "| encoder (bare session) words/s | x |"
    )
    print("|---|---|---|---|---|---|---|")
    for result in results:
        name = Path(result["pipeline"].rstrip("/")).name.removesuffix("-int8")
        words, bare = result["words_per_s"]["median"], result["bare_session"]["words_per_s"]
        schedule = ", ".join(f"{s:g}" for s in shares.get(name) or []) or "none"
        print(
            f"| {name} | {schedule} | {accuracy(args.metrics, 'dev', name)} / {accuracy(args.metrics, 'test', name)} "
            f"| {words:,.0f} | {words / first['words_per_s']['median']:.2f} | {bare:,.0f} "
            f"| {bare / first['bare_session']['words_per_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
