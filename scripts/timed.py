"""Run a command, print its wall time and peak memory, and append them to a JSONL log.

Usage: python scripts/timed.py --log metrics/RUN/timings.jsonl LABEL -- COMMAND ...
A leading `python` runs with this interpreter (as weasel does for the commands it runs), and
the parent folder of an `--output` or `--report` argument is created first (`spacy evaluate` needs it).

`--budget-var VAR` (for `spacy train`): a fixed step budget can stop training while the dev score is
still rising, and the students then learn from a teacher that is not done. After training, when
the best checkpoint is the last evaluation (model-best and model-last have the same scores and
losses), this says so on the console and in the log record, naming the project var to raise.
"""

import argparse
import json
import resource
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
    parser.add_argument("--budget-var", default="", help="project var of the step budget, for the still-rising warning")
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
    # The largest resident memory of the command or any process it waited for (Linux: KB).
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    print(f"[timed] {args.label}: {seconds:.1f}s (exit {code}, peak RSS {peak_gb:.2f} GB)", flush=True)
    record = {"step": args.label, "seconds": round(seconds, 2), "exit": code, "at": time.time()}
    record["peak_rss_gb"] = round(peak_gb, 3)
    if args.budget_var and code == 0:
        record.update(budget_check(command, args.budget_var, args.label))
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a", encoding="utf8") as f:
        f.write(json.dumps(record) + "\n")
    return code


def _option(command, *names):
    for flag, value in zip(command, command[1:]):
        if flag in names:
            return value
    return None


def budget_check(command, var: str, label: str) -> dict:
    """Was the dev score still rising when the step budget stopped `spacy train`?"""
    output = _option(command, "--output", "-o")
    best, last = (Path(output or "") / name / "meta.json" for name in ("model-best", "model-last"))
    if not (output and best.exists() and last.exists()):
        return {}
    best_scores = json.loads(best.read_text(encoding="utf8")).get("performance")
    last_scores = json.loads(last.read_text(encoding="utf8")).get("performance")
    steps = _option(command, "--training.max_steps")
    rising = best_scores == last_scores
    if rising:
        print(
            f"!!! {label}: the dev score was best at the last evaluation (of a budget of {steps} steps), so it was "
            f"still rising when training stopped. Raise --vars.{var} (now {steps}) and rerun this step and the ones "
            "after it.",
            flush=True,
        )
    return {"budget_var": var, "max_steps": steps, "best_at_last_evaluation": rising}


if __name__ == "__main__":
    sys.exit(main())
