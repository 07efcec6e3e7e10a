"""`apply`: annotate a corpus into resumable shards, locally or on Ray."""

from pathlib import Path
from typing import Optional

import typer

from ._util import bertprod_cli, user_errors, write_report


@bertprod_cli.command("apply")
def apply_cli(
    pipeline: str = typer.Argument(..., help="Installed package name or pipeline folder"),
    input_path: Path = typer.Argument(..., help="JSONL or Parquet with a text field; other fields are passed through"),
    output: Path = typer.Argument(..., help="Folder of shards (part-NNNNN.jsonl or .spacy); rerun to resume"),
    engine: str = typer.Option(
        "local", "--engine", help="local (nlp.pipe, n_process=--workers) or ray (Ray Data actor pool)"
    ),
    workers: int = typer.Option(1, "--workers", help="Processes (local) or Ray actors (ray)"),
    threads: int = typer.Option(
        0,
        "--threads",
        help="ONNX Runtime threads per worker (0: cores / workers locally, 1 per Ray actor; Ray reserves that many "
        "CPUs per actor)",
    ),
    address: Optional[str] = typer.Option(
        None, "--address", help="Ray cluster address (default: start a local one, or RAY_ADDRESS)"
    ),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (entities and cats per record) or spacy (DocBins)"),
    text_field: str = typer.Option("text", "--text-field"),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Records per output shard"),
    batch_size: int = typer.Option(64, "--batch-size"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard the shards of an earlier job in OUTPUT"),
):
    """Annotate a corpus into resumable shards, locally or on Ray."""
    from ..annotate import apply

    with user_errors(OSError):
        result = apply(
            pipeline,
            input_path,
            output,
            engine=engine,
            fmt=fmt,
            text_field=text_field,
            shard_size=shard_size,
            batch_size=batch_size,
            workers=workers,
            address=address,
            overwrite=overwrite,
            threads=threads,
        )
    write_report(result, None)
