"""More seeds of the students: runs each task's seed-dependent commands once per extra seed.

    python scripts/run_seeds.py --seeds 1,2 --tasks ner,textcat -- --vars.run full ...

Each seed trains both students, makes their int8 ONNX and evaluates torch and int8 (`TASK-seed-evaluate`).
Seed 0 comes from the `ner`/`textcat` workflows; the teacher, its transfer set and the student
initialisation are shared (their seed is vars.teacher_seed). Each command is a normal
`spacy project run`, so a seed whose outputs exist is skipped, and a stopped study resumes.
"""
import argparse
import subprocess
import sys

COMMANDS = ["control", "distill", "seed-evaluate"]


def main() -> int:
    if "--" in sys.argv:
        split = sys.argv.index("--")
        own, passthrough = sys.argv[1:split], sys.argv[split + 1:]
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
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        for task in tasks:
            for command in COMMANDS:
                cmd = [sys.executable, "-m", "spacy", "project", "run", f"{task}-{command}", ".", "--vars.seed", str(seed)] + passthrough
                print("$", " ".join(cmd), flush=True)
                if subprocess.run(cmd).returncode != 0:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
