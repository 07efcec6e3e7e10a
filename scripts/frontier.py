"""The accuracy/speed frontier: distilled students of other depths, with and without a trimmed vocabulary.

    python scripts/frontier.py ner --run full --layers 3:0.5,2 --pick bottom --steps 1500 --seed 0 \
        --trim-vocab corpus/full/ner/train.spacy

Each student is a depth L, or L:S for a narrower one: S of every layer's feed-forward units are
removed first, the least important on the dev set (`make-student --prune-ffn S --prune-data`),
because a student with fewer units per layer can keep more layers at the same speed. For each:
`make-student` from the task's fine-tuned teacher, the same distillation as the
shipped student (its config, transfer set and teacher), fp32 and int8 ONNX, and an int8 copy whose
vocabulary is trimmed to the `--trim-vocab` corpus; the shipped int8 student gets a trimmed copy
too. Every variant is evaluated on dev and test (`scripts/evaluate.py`), then one `bertprod
benchmark` run times the shipped int8 student next to all of them: speeds compare only within one
run, and the report scales this run through that shared student. Everything lands in
training/RUN/TASK/frontier/ and metrics/RUN/TASK/{dev,test}/frontier<L>[-pruneffn<P>]-s<SEED>-<format>.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, NamedTuple, Optional

TASKS = ("ner", "textcat")


def timed(log: Path, label: str, command: List[str]) -> None:
    """One step through scripts/timed.py (wall time into the run's timings.jsonl); stops on failure."""
    full = [sys.executable, str(Path(__file__).with_name("timed.py")), "--log", str(log), label, "--", *command]
    print("$", " ".join(command), flush=True)
    if subprocess.run(full).returncode != 0:
        raise SystemExit(
            f"frontier: step {label} failed (command above); fix it and re-run, finished students are kept."
        )


class Student(NamedTuple):
    layers: int
    prune_ffn: float  # share of each layer's feed-forward units removed before distillation

    @property
    def name(self) -> str:
        """frontier3, or frontier3-pruneffn50 for 3 layers with 50% of the feed-forward units removed."""
        return f"frontier{self.layers}" + (f"-pruneffn{round(self.prune_ffn * 100)}" if self.prune_ffn else "")


def parse_layers(text: str) -> List[Student]:
    """--layers: comma-separated depths, each optionally `:share` of feed-forward units to remove."""
    students = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        depth, _, share = part.partition(":")
        try:
            student = Student(int(depth), float(share) if share else 0.0)
        except ValueError:
            raise SystemExit(
                f"--layers takes comma-separated layer counts such as 4,2, or depth:share for a narrower student "
                f"(3:0.5 = 3 layers, half of each layer's feed-forward units removed), not {text!r}."
            )
        if not 0.0 <= student.prune_ffn < 1.0 or (share and student.prune_ffn == 0.0):
            raise SystemExit(
                f"--layers: the share of feed-forward units to remove in {part!r} must be above 0 and below 1 "
                "(e.g. 3:0.5)."
            )
        students.append(student)
    if not students or any(s.layers < 1 for s in students):
        raise SystemExit(f"--layers needs at least one positive layer count, got {text!r}.")
    return students


def narrowing_refusal(teacher: Path) -> Optional[str]:
    """Why the teacher's encoder family cannot have feed-forward units removed (None: it can, or
    its config is not where a bertprod pipeline keeps it, and make-student will say)."""
    from spacy_bertprod.families import refuse_pruning

    config = teacher / "transformer" / "config.json"
    if not config.exists():
        return None
    try:
        refuse_pruning(SimpleNamespace(**json.loads(config.read_text())), f"The teacher {teacher}", heads=False)
    except ValueError as err:
        return str(err)
    return None


def drop_unbuildable(students: List[Student], teacher: Path, record: Path) -> List[Student]:
    """The students this teacher can give; narrower ones it cannot are named on stderr and in `record`
    (the report lists them), so a default frontier still runs for DeBERTa, ModernBERT or ALBERT."""
    reason = narrowing_refusal(teacher) if any(s.prune_ffn for s in students) else None
    skipped = [s.name for s in students if s.prune_ffn and reason]
    if skipped:
        print(f"frontier: not building {', '.join(skipped)}: {reason}", file=sys.stderr, flush=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"skipped": skipped, "reason": reason}, indent=2), encoding="utf8")
    elif record.exists():
        record.unlink()
    return [s for s in students if s.name not in skipped]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--run", default="full")
    parser.add_argument(
        "--layers",
        default="3:0.5,2",
        help="student depths, comma separated; depth:share removes that share of FFN units first",
    )
    parser.add_argument(
        "--pick", default="spread", help="which teacher layers each student starts from (make-student --pick)"
    )
    parser.add_argument("--steps", type=int, required=True, help="distillation steps (the shipped student's budget)")
    parser.add_argument("--eval-frequency", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--mixed-precision", default="false", choices=["true", "false"])
    parser.add_argument("--trim-vocab", default="", help="corpus for the trimmed-vocabulary copies (empty: none)")
    parser.add_argument("--bench-repeats", type=int, default=3)
    parser.add_argument("--latency-docs", type=int, default=200)
    args = parser.parse_args()
    students = parse_layers(args.layers)
    corpus, training, metrics = (
        Path("corpus") / args.run / args.task,
        Path("training") / args.run / args.task,
        Path("metrics") / args.run / args.task,
    )
    log, out = Path("metrics") / args.run / "timings.jsonl", training / "frontier"
    teacher, shipped = training / "teacher" / "model-best", training / f"distilled-s{args.seed}"
    teacher_int8 = training / "teacher-onnx-int8"
    for needed in (
        teacher,
        teacher_int8,
        shipped / "model-best",
        corpus / "distill" / "_job.json",
        Path(f"{shipped}-onnx-int8"),
    ):
        if not needed.exists():
            raise SystemExit(f"frontier: {needed} is missing; run the `{args.task}` workflow first.")
    if args.trim_vocab and not Path(args.trim_vocab).exists():
        raise SystemExit(f"frontier: the --trim-vocab corpus {args.trim_vocab} does not exist.")
    students = drop_unbuildable(students, teacher, metrics / "frontier-skipped.json")
    # ner learns the int8 teacher's action distribution during training; textcat's soft targets are
    # stored in the transfer set
    teacher_args = ["--paths.teacher", str(teacher_int8)] if args.task == "ner" else []
    evaluate: List[str] = []
    bench: List[str] = [f"{shipped}-onnx-int8"]

    def compress(model: Path, name: str, quantize: str, trim: bool = False) -> None:
        folder = out / name
        extra = ["--trim-vocab", args.trim_vocab] if trim else []
        timed(
            log,
            f"{args.task}-{name}",
            [
                "python",
                "-m",
                "spacy",
                "bertprod",
                "compress",
                str(model),
                str(folder),
                "--quantize",
                quantize,
                "--sample",
                str(corpus / "dev.spacy"),
                "--force",
                *extra,
            ],
        )
        evaluate.append(f"{folder}={name}")
        bench.append(str(folder))

    if args.trim_vocab:
        compress(shipped / "model-best", f"distilled-s{args.seed}-onnx-int8-trim", "int8", trim=True)
    for spec in students:
        init, student = out / f"{spec.name}-init", out / f"{spec.name}-s{args.seed}"
        narrower = ["--prune-ffn", str(spec.prune_ffn), "--prune-data", str(corpus / "dev.spacy")]
        timed(
            log,
            f"{args.task}-{spec.name}-init",
            [
                "python",
                "-m",
                "spacy",
                "bertprod",
                "make-student",
                str(teacher),
                str(init),
                "--layers",
                str(spec.layers),
                "--pick",
                args.pick,
                *(narrower if spec.prune_ffn else []),
            ],
        )
        timed(
            log,
            f"{args.task}-{spec.name}-s{args.seed}",
            [
                "python",
                "-m",
                "spacy",
                "train",
                str(corpus / "config.cfg"),
                "--output",
                str(student),
                "--paths.train",
                str(corpus / "distill"),
                "--training.max_epochs",
                "-1",
                "--corpora.train.@readers",
                "spacy_bertprod.StreamingCorpus.v1",
                "--paths.dev",
                str(corpus / "dev.spacy"),
                "--paths.encoder",
                str(init),
                *teacher_args,
                "--training.max_steps",
                str(args.steps),
                "--training.eval_frequency",
                str(args.eval_frequency),
                "--system.seed",
                str(args.seed),
                "--gpu-id",
                str(args.gpu_id),
                "--components.transformer.model.mixed_precision",
                args.mixed_precision,
            ],
        )
        for quantize in ("fp32", "int8"):
            compress(student / "model-best", f"{spec.name}-s{args.seed}-onnx-{quantize}", quantize)
        if args.trim_vocab:
            compress(student / "model-best", f"{spec.name}-s{args.seed}-onnx-int8-trim", "int8", trim=True)
    timed(
        log,
        f"{args.task}-evaluate-frontier",
        ["python", str(Path(__file__).with_name("evaluate.py")), str(corpus), str(metrics), *evaluate],
    )
    timed(
        log,
        f"{args.task}-benchmark-frontier",
        [
            "python",
            "-m",
            "spacy",
            "bertprod",
            "benchmark",
            *bench,
            "--data",
            str(corpus / "test.spacy"),
            "--batch-size",
            "64",
            "--repeats",
            str(args.bench_repeats),
            "--latency-docs",
            str(args.latency_docs),
            "--report",
            str(metrics / "benchmark-frontier.json"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
