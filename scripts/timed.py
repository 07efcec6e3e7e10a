"""Run a command, print its wall time, and append it to a JSONL log.

Usage: python scripts/timed.py --log metrics/RUN/timings.jsonl LABEL -- COMMAND ...
A leading `python` runs with this interpreter (as weasel does for the commands it runs), and
the parent folder of an `--output` or `--report` argument is created first (`spacy evaluate` needs it).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    if "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, default=Path("metrics") / "timings.jsonl")
    parser.add_argument("label")
    args = parser.parse_args(sys.argv[1:split])
    command = sys.argv[split + 1 :]
    if command and command[0] == "python":
        command[0] = sys.executable
    for flag, value in zip(command, command[1:]):
        if flag in ("--output", "-o", "--report"):
            Path(value).parent.mkdir(parents=True, exist_ok=True)  # spacy evaluate does not create it
    start = time.perf_counter()
    code = subprocess.call(command)
    seconds = time.perf_counter() - start
    print(f"[timed] {args.label}: {seconds:.1f}s (exit {code})", flush=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a", encoding="utf8") as f:
        f.write(json.dumps({"step": args.label, "seconds": round(seconds, 2), "exit": code, "at": time.time()}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
