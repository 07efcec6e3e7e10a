"""More seeds of the students: runs each task's seed-dependent commands once per extra seed.

    python scripts/run_seeds.py --seeds 1,2 --tasks ner,textcat -- --vars.run full ...

Each seed trains both students, makes their int8 ONNX and evaluates torch and int8 (`TASK-seed-evaluate`).
Seed 0 comes from the `ner`/`textcat` workflows; the teacher, its transfer set and the student
initialisation are shared (their seed is vars.teacher_seed). Each command is a normal
`spacy project run`, so a seed whose commands, deps and outputs have not changed is skipped, and
a stopped study resumes. spaCy's project.lock keeps one entry per command *name*, so on its own
it would take seed 2's entry for seed 1's and re-run (overwrite) seed 1's students; the entries
of each seed are therefore kept in project.seeds.lock and swapped in around that seed's runs,
and the entries the lock had before (seed 0's, from the task workflows) are put back at the end.
"""

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import srsly

LOCK = Path("project.lock")
SEED_LOCKS = Path("project.seeds.lock")


def _read(path: Path) -> Dict:
    return dict(srsly.read_yaml(path) or {}) if path.exists() else {}


def swap_in(names: List[str], seed: int) -> None:
    """Give spaCy this seed's lock entries (none: the command runs)."""
    lock, saved = _read(LOCK), _read(SEED_LOCKS)
    for name in names:
        entry = saved.get(f"{name}@seed{seed}")
        if entry is None:
            lock.pop(name, None)
        else:
            lock[name] = entry
    srsly.write_yaml(LOCK, lock)


def save(names: List[str], seed: int) -> None:
    lock, saved = _read(LOCK), _read(SEED_LOCKS)
    saved.update({f"{name}@seed{seed}": lock[name] for name in names if name in lock})
    srsly.write_yaml(SEED_LOCKS, saved)


COMMANDS = ["control", "distill", "seed-evaluate"]


def main() -> int:
    if "--" in sys.argv:
        split = sys.argv.index("--")
        own, passthrough = sys.argv[1:split], sys.argv[split + 1 :]
    else:
        own, passthrough = sys.argv[1:], []
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--tasks", default="ner,textcat")
    args = parser.parse_args(own)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in ("ner", "textcat")]
    if unknown:
        print(f"Unknown task(s) {unknown}: use ner and/or textcat.", file=sys.stderr)
        return 2
    names = [f"{task}-{command}" for task in tasks for command in COMMANDS]
    before = {name: entry for name, entry in _read(LOCK).items() if name in names}
    try:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            swap_in(names, seed)
            try:
                for name in names:
                    cmd = [
                        sys.executable,
                        "-m",
                        "spacy",
                        "project",
                        "run",
                        name,
                        ".",
                        "--vars.seed",
                        str(seed),
                    ] + passthrough
                    print("$", " ".join(cmd), flush=True)
                    if subprocess.run(cmd).returncode != 0:
                        return 1
            finally:
                save(names, seed)
    finally:
        lock = {name: entry for name, entry in _read(LOCK).items() if name not in names}
        srsly.write_yaml(LOCK, {**lock, **before})
    return 0


if __name__ == "__main__":
    sys.exit(main())
