"""`compress` and `invariance`: ONNX pipelines, and whether they give the same text the same answer."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ._util import bertprod_cli, optional_path, report_path, user_errors, write_report


@bertprod_cli.command("compress")
def compress_cli(
    input_path: Path = typer.Argument(
        ...,
        help="Saved pipeline with a transformer (spacy-transformers or bertprod torch)",
        exists=True,
        file_okay=False,
    ),
    output_path: Path = typer.Argument(..., help="Folder for the ONNX pipeline"),
    quantize: str = typer.Option("int8", "--quantize", "-q", help="int8 or fp32"),
    optimize: bool = typer.Option(
        True, "--optimize/--no-optimize", help="Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer"
    ),
    per_channel: bool = typer.Option(
        True, "--per-channel/--per-tensor", help="Per-channel (default) or per-tensor int8 weights"
    ),
    reduce_range: bool = typer.Option(False, "--reduce-range", help="7-bit weights (for CPUs without VNNI)"),
    exclude_nodes: str = typer.Option("", "--exclude-nodes", help="Comma-separated ONNX node names to keep in fp32"),
    quantize_embeddings: bool = typer.Option(
        True, "--quantize-embeddings/--no-quantize-embeddings", help="Also quantise the embedding tables (default)"
    ),
    activation_scales: str = typer.Option(
        "calibrated",
        "--activation-scales",
        help="int8 activation scales: 'calibrated' on --sample (default; a text's result never depends on its "
        "batch-mates) or 'dynamic' (per batch, ONNX Runtime's quantize_dynamic)",
    ),
    calibration_percentile: float = typer.Option(
        99.99,
        "--calibration-percentile",
        help="Calibrated activation ranges keep this central percentage of the sample's values (100: min/max)",
    ),
    min_max_fallback: bool = typer.Option(
        True,
        "--min-max-fallback/--no-min-max-fallback",
        help="When the percentile ranges change more than 2% of the sample's predictions, calibrate again with "
        "min/max ranges, then smoothed activations (SmoothQuant) and min/max ranges, and keep whichever changes fewest "
        "(12-layer encoders' outlier activations)",
    ),
    smooth_alpha: float = typer.Option(
        0.0,
        "--smooth-alpha",
        help="Smooth activations before int8 (SmoothQuant: move outlier channels' range into the weights; 0: off, "
        "else in (0, 1], e.g. 0.8)",
    ),
    sample: Optional[Path] = typer.Option(
        None,
        "--sample",
        help="In-domain texts for int8 calibration and the parity check (.txt lines, .jsonl with 'text', or .spacy); "
        "e.g. the dev set; thinned to 1,000 docs (stratified by label in .spacy) when larger. Without it: the "
        "pipeline's own [paths] dev (then train) corpus "
        "when it exists, else a built-in set",
    ),
    threads: int = typer.Option(
        0, "--threads", help="ONNX Runtime intra-op threads in the output pipeline (0: one per core)"
    ),
    trim_vocab: Optional[Path] = typer.Option(
        None,
        "--trim-vocab",
        help="Keep only the wordpieces these in-domain texts use (+ single characters and the specials; WordPiece, "
        "BPE and Unigram tokenizers): .spacy, .jsonl or lines; e.g. the training data",
    ),
    vocab_min_count: int = typer.Option(
        1, "--vocab-min-count", help="With --trim-vocab: keep wordpieces seen at least this often"
    ),
    vocab_characters: str = typer.Option(
        "all",
        "--vocab-characters",
        help="With --trim-vocab: keep every single-character piece ('all': nothing new becomes unknown) or only "
        "those the corpus or ASCII uses ('corpus': far smaller for multilingual vocabularies; other scripts become "
        "unknown)",
    ),
    prune_heads: float = typer.Option(
        0.0,
        "--prune-heads",
        help="Share of attention heads to remove, the least important on --prune-data first (Michel et al. 2019); 0: "
        "none",
    ),
    prune_ffn: float = typer.Option(
        0.0,
        "--prune-ffn",
        help="Share of feed-forward units to remove in every layer, the least important on --prune-data first; 0: none",
    ),
    prune_data: Optional[Path] = typer.Option(
        None,
        "--prune-data",
        help="Labelled .spacy docs (e.g. the dev set) whose loss ranks heads and units for --prune-heads/--prune-ffn",
    ),
    depth: int = typer.Option(
        0,
        "--depth",
        help="Keep only the encoder's first N layers (0: all); train with random_depth for a pipeline that can be cut",
    ),
    word_retention: str = typer.Option(
        "",
        "--word-retention",
        help="Text classification only: per layer, the share of each doc's word vectors it sees, e.g. 1,0.6,0.3 "
        "(PoWER-BERT: the most attended ones stay; empty: as trained, see word_retention in the training config)",
    ),
    heads_in_graph: bool = typer.Option(
        True,
        "--heads-in-graph/--heads-in-python",
        help="Compute textcat/textcat_multilabel heads (spacy.TextCatReduce.v1 over the transformer) inside the ONNX "
        "graph, in float32: same doc.cats, less Python per doc; docs longer than one window still use the head in "
        "Python",
    ),
    force: bool = typer.Option(False, "--force", "-F", help="Overwrite OUTPUT_PATH"),
    report: Optional[Path] = typer.Option(
        None,
        "--report",
        help="Also write the report's summary as JSON here (the full report is OUTPUT_PATH/compress_report.json)",
    ),
):
    """Rewrite a transformer pipeline onto ONNX Runtime (export, fusion, int8), heads unchanged."""
    from ..compress import CompressSettings, compress_pipeline
    from ..compress.quantize import QuantizeSettings
    from ..texts import read_texts

    with user_errors():
        settings = CompressSettings(
            quantize=quantize,
            optimize=optimize,
            quantization=QuantizeSettings(
                per_channel=per_channel,
                reduce_range=reduce_range,
                nodes_to_exclude=[n for n in exclude_nodes.split(",") if n],
                quantize_embeddings=quantize_embeddings,
                activation_scales=activation_scales,
                calibration_percentile=calibration_percentile,
                min_max_fallback=min_max_fallback,
                smooth_alpha=smooth_alpha,
            ),
            intra_op_num_threads=threads,
            force=force,
            sample_path=sample,
            vocab_texts=read_texts(trim_vocab) if optional_path(trim_vocab) is not None else None,
            vocab_min_count=vocab_min_count,
            vocab_characters=vocab_characters,
            prune_heads=prune_heads,
            prune_ffn=prune_ffn,
            prune_data=optional_path(prune_data),
            heads_in_graph=heads_in_graph,
            depth=depth,
            word_retention=word_retention,
        )
        result = compress_pipeline(input_path, output_path, settings)
    msg.good(f"Wrote {output_path} (full report: {output_path / 'compress_report.json'})")
    summary = (
        "sizes_bytes",
        "fusion_statistics",
        "depth",
        "word_retention",
        "vocabulary",
        "pruning",
        "heads_in_graph",
        "parity",
    )
    write_report({key: result[key] for key in summary}, report)


@bertprod_cli.command("embedder")
def embedder_cli(
    model_dir: Path = typer.Argument(..., help="sentence-transformers (or Hugging Face) model folder"),
    output_path: Path = typer.Argument(..., help="Folder for the compressed embedding pipeline"),
    quantize: str = typer.Option("int8", "--quantize", "-q", help="int8 or fp32"),
    sample: Optional[Path] = typer.Option(
        None,
        "--sample",
        help="In-domain texts for int8 calibration and the vector check (.txt lines, .jsonl with 'text', or .spacy); "
        "without it a built-in set of varied texts",
    ),
    pooling: str = typer.Option(
        "auto", "--pooling", help="auto (the folder's modules.json / 1_Pooling), mean, cls or max"
    ),
    normalize: bool = typer.Option(
        True, "--normalize/--no-normalize", help="With --pooling mean|cls|max: L2-normalise the vectors"
    ),
    lang: str = typer.Option("en", "--lang", help="spaCy language of the pipeline's tokenizer"),
    window: int = typer.Option(128, "--window", help="spaCy tokens per encoder window"),
    stride: int = typer.Option(96, "--stride", help="Tokens between window starts (windows overlap by window-stride)"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: one per core)"),
    force: bool = typer.Option(False, "--force", "-F", help="Overwrite OUTPUT_PATH"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report's summary as JSON here"),
):
    """A spaCy pipeline whose doc.vector / doc.similarity are the model's sentence embedding, on ONNX Runtime."""
    from ..compress import CompressSettings
    from ..compress.embedder import EmbedderSettings, build_embedder

    with user_errors():
        compress = CompressSettings(
            quantize=quantize,
            intra_op_num_threads=threads,
            force=force,
            sample_path=sample,
        )
        settings = EmbedderSettings(lang=lang, pooling=pooling, normalize=normalize, window=window, stride=stride)
        result = build_embedder(model_dir, output_path, settings, compress)
    vectors = result["parity"].get("predictions", {})
    if "sentence_vector_mean_cosine" in vectors:
        msg.info(
            f"doc.vector vs the torch original on {vectors['n_docs']} sample texts: mean cosine "
            f"{vectors['sentence_vector_mean_cosine']:.4f}, min {vectors['sentence_vector_min_cosine']:.4f}"
        )
    msg.good(f"Wrote {output_path} (full report: {output_path / 'compress_report.json'})")
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
            raise ValueError(f"--batch-sizes needs positive integers, got '{batch_sizes}'.")
        total = count_texts(data, limit)  # checks the file and reads it once, in constant memory
        nlp = spacy.load(pipeline)
        texts = lambda: iter_texts(data, limit)  # noqa: E731 (read again for each pass)
        result = batch_invariance(nlp, texts, sizes, n_process=n_process, cats_tolerance=cats_tolerance, total=total)
    result["pipeline"] = pipeline
    write_report(result, report)
