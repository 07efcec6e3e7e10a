"""Distillation: `make-student`, `augment` (transfer set), `teacher-label`."""

from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ._util import bertprod_cli, optional_path, user_errors, write_report


@bertprod_cli.command("make-student")
def make_student_cli(
    teacher: Path = typer.Argument(
        ..., help="Teacher: a model directory or a trained pipeline with a transformer", exists=True
    ),
    output: Path = typer.Argument(..., help="Folder for the student model (config.json, model.safetensors, tokenizer)"),
    layers: Optional[int] = typer.Option(
        None, "--layers", "-l", help="Student depth (default: 3, or as many as --layer-map names)"
    ),
    pick: str = typer.Option(
        "spread",
        "--pick",
        help="Which teacher layers: 'spread' (evenly spaced, top layer kept: 6 -> 3 takes 1,3,5) or 'bottom' (the "
        "first ones: 0,1,2)",
    ),
    layer_map: str = typer.Option(
        "",
        "--layer-map",
        help="Comma-separated teacher layers (0-based) to copy, one per student layer; overrides --pick",
    ),
    prune_heads: float = typer.Option(
        0.0,
        "--prune-heads",
        help="Also remove this share of the teacher's attention heads, least important on --prune-data first",
    ),
    prune_ffn: float = typer.Option(
        0.0,
        "--prune-ffn",
        help="Also remove this share of every layer's feed-forward units, least important on --prune-data first",
    ),
    prune_data: Optional[Path] = typer.Option(
        None,
        "--prune-data",
        help="Labelled .spacy docs (e.g. the dev set) whose loss through the teacher pipeline ranks heads and units",
    ),
):
    """Initialise a shallower (and with --prune-*, narrower) student encoder from a teacher's layers."""
    from ..distill.student import make_student

    with user_errors():
        info = make_student(
            teacher,
            output,
            layers,
            _layer_numbers(layer_map),
            pick=pick,
            prune_heads=prune_heads,
            prune_ffn=prune_ffn,
            prune_data=optional_path(prune_data),
        )
    msg.good(f"Student with {info['student_layers']} layers (teacher layers {info['layer_map']}) in {output}")
    write_report(info, None)


def _layer_numbers(layer_map: str) -> Optional[List[int]]:
    """--layer-map's teacher layers, or None when it is empty."""
    items = [x.strip() for x in layer_map.split(",") if x.strip()]
    bad = [x for x in items if not x.lstrip("-").isdigit()]
    if bad:
        msg.fail(
            f"--layer-map takes comma-separated teacher layer numbers (e.g. 0,2,5), not {', '.join(bad)}.", exits=1
        )
    return [int(x) for x in items] or None


@bertprod_cli.command("augment")
def augment_cli(
    train_path: Path = typer.Argument(..., help="Gold training docs (.spacy)"),
    output_path: Path = typer.Argument(..., help="Where to write the transfer set (.spacy, unannotated)"),
    encoder: Path = typer.Option(
        ...,
        "--encoder",
        help="Where the replacement words come from: the teacher (a trained torch pipeline) or its model directory",
    ),
    n_variants: int = typer.Option(
        10, "--n-variants", "-n", help="Word-replacement variants per training doc (0: raw text only)"
    ),
    replace_prob: float = typer.Option(0.4, "--replace-prob", help="Probability that an eligible word is replaced"),
    n_neighbours: int = typer.Option(
        15, "--neighbours", help="Replacement candidates per word: its nearest wordpieces in the encoder's embedding"
    ),
    replace_stop_words: bool = typer.Option(
        True,
        "--replace-stop-words/--keep-stop-words",
        help="Whether the language's stop words may be replaced too (--keep-stop-words: variants stay closer to real "
        "text)",
    ),
    raw_text: Optional[Path] = typer.Option(
        None, "--raw-text", help="Unlabelled in-domain texts to add (.txt lines, .jsonl with 'text', or .spacy)"
    ),
    raw_limit: int = typer.Option(0, "--raw-limit", help="Use only the first N raw texts (0: all)"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits the raw texts"),
    seed: int = typer.Option(0, "--seed"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON here"),
):
    """Make a distillation transfer set: TinyBERT-style word replacement plus raw text (label it with teacher-label)."""
    from ..distill.augment import make_transfer_set

    with user_errors():
        info = make_transfer_set(
            train_path,
            encoder,
            output_path,
            n_variants=n_variants,
            replace_prob=replace_prob,
            n_neighbours=n_neighbours,
            replace_stop_words=replace_stop_words,
            raw_text=optional_path(raw_text),
            raw_limit=raw_limit,
            lang=lang,
            seed=seed,
        )
    msg.good(f"Wrote {output_path}: {info['transfer_docs']:,} docs")
    write_report(info, report)


@bertprod_cli.command("teacher-label")
def teacher_label_cli(
    teacher: Path = typer.Argument(
        ..., help="Trained teacher pipeline (a compressed ONNX one is fastest)", exists=True, file_okay=False
    ),
    input_paths: List[Path] = typer.Argument(
        ..., help="Docs to label (.spacy files or folders of them): gold training docs and/or a transfer set"
    ),
    output_path: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Folder for the teacher-labelled docs, written as .spacy shards (spacy train reads the folder); a rerun "
        "of the same job resumes there",
    ),
    soft_weight: float = typer.Option(
        0.5, "--soft-weight", help="Weight of the teacher's textcat scores against gold, where a doc has gold"
    ),
    temperature: float = typer.Option(
        1.0, "--temperature", "-T", help="Softmax temperature of the teacher's textcat probabilities (>1: softer)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (this process) or ray (bertprod apply's Ray actor pool over shards in OUTPUT/_ray/: survives a "
        "dead worker)",
    ),
    workers: int = typer.Option(1, "--workers", help="With --engine ray: actors, each loading the teacher once"),
    shard_size: int = typer.Option(
        10_000, "--shard-size", help="Docs per output shard: labelled, written and resumed a shard at a time"
    ),
    address: Optional[str] = typer.Option(None, "--address", help="With --engine ray: the cluster (default: local)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON here"),
):
    """Label docs with the teacher once and store it: soft textcat targets, silver entities where there is no gold."""
    from ..distill.targets import teacher_label

    with user_errors():
        info = teacher_label(
            teacher,
            input_paths,
            output_path,
            soft_weight=soft_weight,
            temperature=temperature,
            batch_size=batch_size,
            engine=engine,
            workers=workers,
            shard_size=shard_size,
            address=address,
        )
    resumed = f" ({info['resumed_docs']:,} from an earlier run)" if info["resumed_docs"] else ""
    msg.good(f"Wrote {output_path}: {info['docs']:,} docs in {info['shards']} shard(s){resumed}")
    write_report(info, report)
