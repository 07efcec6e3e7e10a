"""Run a command, print its wall time, and append it to metrics/timings.jsonl.

Usage: python scripts/timed.py LABEL -- COMMAND ...
"""
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    if "--" not in sys.argv or sys.argv.index("--") != 2:
        print(__doc__, file=sys.stderr)
        return 2
    label, command = sys.argv[1], sys.argv[3:]
    start = time.perf_counter()
    code = subprocess.call(command)
    seconds = time.perf_counter() - start
    print(f"[timed] {label}: {seconds:.1f}s (exit {code})", flush=True)
    log = Path("metrics") / "timings.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf8") as f:
        f.write(json.dumps({"step": label, "seconds": round(seconds, 2), "exit": code, "at": time.time()}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
