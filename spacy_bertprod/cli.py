"""`python -m spacy bertprod ...`: registered through spaCy's `spacy_cli` entry point group.

Kept import-light: spaCy imports this module for every CLI call, so torch is imported only
inside the commands that need it.
"""
import json
from pathlib import Path
from typing import List, Optional

import typer
from spacy.cli._util import app
from wasabi import msg

bertprod_cli = typer.Typer(
    name="bertprod", help="Distil, compress and benchmark transformer pipelines.", no_args_is_help=True
)
app.add_typer(bertprod_cli)


def _read_sample(path: Optional[Path]) -> Optional[List[str]]:
    if path is None:
        return None
    if not path.exists():
        msg.fail(f"Sample file {path} does not exist.", exits=1)
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        return [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)]
    if path.suffix == ".jsonl":
        import srsly

        return [line["text"] for line in srsly.read_jsonl(path)]
    return [line for line in path.read_text(encoding="utf8").splitlines() if line.strip()]


@bertprod_cli.command("compress")
def compress_cli(
    input_path: Path = typer.Argument(..., help="Saved pipeline with a transformer (spacy-transformers or bertprod torch)", exists=True, file_okay=False),
    output_path: Path = typer.Argument(..., help="Folder for the ONNX pipeline"),
    quantize: str = typer.Option("int8", "--quantize", "-q", help="int8 (dynamic quantisation) or fp32"),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer"),
    per_channel: bool = typer.Option(False, "--per-channel", help="Per-channel int8 weights"),
    reduce_range: bool = typer.Option(False, "--reduce-range", help="7-bit weights (for CPUs without VNNI)"),
    exclude_nodes: str = typer.Option("", "--exclude-nodes", help="Comma-separated ONNX node names to keep in fp32"),
    quantize_embeddings: bool = typer.Option(False, "--quantize-embeddings", help="Also quantise the embedding tables"),
    sample: Optional[Path] = typer.Option(None, "--sample", help="Texts for the parity check (.txt lines, .jsonl with 'text', or .spacy)"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads in the output pipeline (0: one per core)"),
    force: bool = typer.Option(False, "--force", "-F", help="Overwrite OUTPUT_PATH"),
):
    """Rewrite a transformer pipeline onto ONNX Runtime (export, fusion, int8), heads unchanged."""
    from .compress import CompressSettings, compress_pipeline
    from .compress.quantize import QuantizeSettings

    settings = CompressSettings(
        quantize=quantize,
        optimize=optimize,
        quantization=QuantizeSettings(
            per_channel=per_channel,
            reduce_range=reduce_range,
            nodes_to_exclude=[n for n in exclude_nodes.split(",") if n],
            quantize_embeddings=quantize_embeddings,
        ),
        intra_op_num_threads=threads,
        force=force,
        sample_texts=_read_sample(sample),
    )
    try:
        report = compress_pipeline(input_path, output_path, settings)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    sizes = report["sizes_bytes"]
    msg.good(f"Wrote {output_path}")
    print(json.dumps({"sizes_bytes": sizes, "fusion_statistics": report["fusion_statistics"], "parity": report["parity"]}, indent=2))
