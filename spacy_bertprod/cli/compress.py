"""`compress` and `invariance`: ONNX pipelines, and whether they give the same text the same answer."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..compress.report import REPORT_FILE
from ..compress.settings import CompressSettings
from ..errors import InvalidInput
from ..options import from_options
from ._util import bertprod_cli, report_path, user_errors, write_report
from .options import with_options


@bertprod_cli.command("compress")
@with_options(CompressSettings)
def compress_cli(
    input_path: str = typer.Argument(
        ...,
        help="Saved pipeline folder or installed package name (en_core_web_trf) with a transformer "
        "(spacy-transformers, spacy-curated-transformers or bertprod torch)",
    ),
    output_path: Path = typer.Argument(..., help="Folder for the ONNX pipeline"),
    report: Optional[Path] = typer.Option(
        None,
        "--report",
        help="Also write the report's summary as JSON here (the full report is OUTPUT_PATH/compress_report.json)",
    ),
    options: Optional[dict] = None,
):
    """Rewrite a transformer pipeline onto ONNX Runtime (export, fusion, int8), heads unchanged.
    Every option is a field of CompressSettings / QuantizeSettings (compress/settings.py)."""
    from ..compress import compress_pipeline
    from ..compress.report import summary

    with user_errors():
        result = compress_pipeline(input_path, output_path, from_options(CompressSettings, options))
    msg.good(f"Wrote {output_path} (full report: {output_path / REPORT_FILE})")
    write_report(summary(result), report)


@bertprod_cli.command("embedder")
@with_options(CompressSettings, only=("quantize", "intra_op_num_threads", "force", "sample_path"))
def embedder_cli(
    model_dir: Path = typer.Argument(..., help="sentence-transformers (or Hugging Face) model folder"),
    output_path: Path = typer.Argument(..., help="Folder for the compressed embedding pipeline"),
    pooling: str = typer.Option(
        "auto", "--pooling", help="auto (the folder's modules.json / 1_Pooling), mean, cls or max"
    ),
    normalize: bool = typer.Option(
        True, "--normalize/--no-normalize", help="With --pooling mean|cls|max: L2-normalise the vectors"
    ),
    lang: str = typer.Option("en", "--lang", help="spaCy language of the pipeline's tokenizer"),
    window: int = typer.Option(128, "--window", help="spaCy tokens per encoder window"),
    stride: int = typer.Option(96, "--stride", help="Tokens between window starts (windows overlap by window-stride)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report's summary as JSON here"),
    options: Optional[dict] = None,
):
    """A spaCy pipeline whose doc.vector / doc.similarity are the model's sentence embedding, on ONNX Runtime."""
    from ..compress.embedder import EmbedderSettings, build_embedder

    with user_errors():
        compress = from_options(CompressSettings, options)
        settings = EmbedderSettings(lang=lang, pooling=pooling, normalize=normalize, window=window, stride=stride)
        result = build_embedder(model_dir, output_path, settings, compress)
    vectors = result["parity"].get("predictions", {})
    if "sentence_vector_mean_cosine" in vectors:
        msg.info(
            f"doc.vector vs the torch original on {vectors['n_docs']} sample texts: mean cosine "
            f"{vectors['sentence_vector_mean_cosine']:.4f}, min {vectors['sentence_vector_min_cosine']:.4f}"
        )
    msg.good(f"Wrote {output_path} (full report: {output_path / REPORT_FILE})")
    write_report({key: result[key] for key in ("sizes_bytes", "parity")}, report)


@bertprod_cli.command("invariance")
def invariance_cli(
    pipeline: str = typer.Argument(..., help="Pipeline folder or installed package name"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_sizes: str = typer.Option(
        "1,16,64,256", "--batch-sizes", help="Comma-separated nlp.pipe batch sizes to compare with nlp(text)"
    ),
    n_process: int = typer.Option(2, "--n-process", help="Also compare nlp.pipe(n_process=N) (1: skip)"),
    cats_tolerance: float = typer.Option(
        1e-4, "--cats-tolerance", help="Largest textcat score difference that still counts as the same"
    ),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the results as JSON"),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True, help="Deprecated: --report"),
):
    """Same text, same answer? Share of docs whose predictions alone equal those in batches,
    at other batch sizes, in shuffled order and in other processes."""
    import spacy

    from ..compress.parity import batch_invariance
    from ..texts import count_texts, iter_texts

    report = report_path(report, old_output, "invariance")
    with user_errors(OSError):
        sizes = [int(x) for x in batch_sizes.split(",") if x.strip()]
        if not sizes or min(sizes) < 1:
            raise InvalidInput(f"--batch-sizes needs positive integers, got '{batch_sizes}'.")
        total = count_texts(data, limit)  # checks the file and reads it once, in constant memory
        nlp = spacy.load(pipeline)
        texts = lambda: iter_texts(data, limit)  # noqa: E731 (read again for each pass)
        result = batch_invariance(nlp, texts, sizes, n_process=n_process, cats_tolerance=cats_tolerance, total=total)
    result["pipeline"] = pipeline
    write_report(result, report)
