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


def _optional_path(path: Optional[Path]) -> Optional[Path]:
    """Project vars left empty arrive as '' (a Path of '.'): treat them as not given."""
    return path if path is not None and str(path) not in ("", ".", "null", "None") else None


def _print_and_write(info: dict, report: Optional[Path]) -> None:
    print(json.dumps(info, indent=2))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(info, indent=2), encoding="utf8")


@bertprod_cli.command("compress")
def compress_cli(
    input_path: Path = typer.Argument(..., help="Saved pipeline with a transformer (spacy-transformers or bertprod torch)", exists=True, file_okay=False),
    output_path: Path = typer.Argument(..., help="Folder for the ONNX pipeline"),
    quantize: str = typer.Option("int8", "--quantize", "-q", help="int8 or fp32"),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer"),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="Per-channel (default) or per-tensor int8 weights"),
    reduce_range: bool = typer.Option(False, "--reduce-range", help="7-bit weights (for CPUs without VNNI)"),
    exclude_nodes: str = typer.Option("", "--exclude-nodes", help="Comma-separated ONNX node names to keep in fp32"),
    quantize_embeddings: bool = typer.Option(True, "--quantize-embeddings/--no-quantize-embeddings", help="Also quantise the embedding tables (default)"),
    activation_scales: str = typer.Option("calibrated", "--activation-scales", help="int8 activation scales: 'calibrated' on --sample (default; a text's result never depends on its batch-mates) or 'dynamic' (per batch, ONNX Runtime's quantize_dynamic)"),
    calibration_percentile: float = typer.Option(99.99, "--calibration-percentile", help="Calibrated activation ranges keep this central percentage of the sample's values (100: min/max)"),
    sample: Optional[Path] = typer.Option(None, "--sample", help="In-domain texts for int8 calibration and the parity check (.txt lines, .jsonl with 'text', or .spacy); a few hundred docs, e.g. the dev set. Without it: the pipeline's own [paths] dev (then train) corpus when it exists, else a built-in set"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads in the output pipeline (0: one per core)"),
    trim_vocab: Optional[Path] = typer.Option(None, "--trim-vocab", help="Keep only the wordpieces these in-domain texts use (+ every single character and the specials): .spacy, .jsonl or lines; e.g. the training data"),
    vocab_min_count: int = typer.Option(1, "--vocab-min-count", help="With --trim-vocab: keep wordpieces seen at least this often"),
    prune_heads: float = typer.Option(0.0, "--prune-heads", help="Share of attention heads to remove, the least important on --prune-data first (Michel et al. 2019); 0: none"),
    prune_ffn: float = typer.Option(0.0, "--prune-ffn", help="Share of feed-forward units to remove in every layer, the least important on --prune-data first; 0: none"),
    prune_data: Optional[Path] = typer.Option(None, "--prune-data", help="Labelled .spacy docs (e.g. the dev set) whose loss ranks heads and units for --prune-heads/--prune-ffn"),
    force: bool = typer.Option(False, "--force", "-F", help="Overwrite OUTPUT_PATH"),
):
    """Rewrite a transformer pipeline onto ONNX Runtime (export, fusion, int8), heads unchanged."""
    from .compress import CompressSettings, compress_pipeline
    from .compress.quantize import QuantizeSettings
    from .texts import read_texts

    try:
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
            ),
            intra_op_num_threads=threads,
            force=force,
            sample_texts=read_texts(sample) if sample is not None else None,
            sample_source=f"--sample {sample}",
            vocab_texts=read_texts(trim_vocab) if _optional_path(trim_vocab) is not None else None,
            vocab_min_count=vocab_min_count,
            prune_heads=prune_heads,
            prune_ffn=prune_ffn,
            prune_data=_optional_path(prune_data),
        )
        report = compress_pipeline(input_path, output_path, settings)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    sizes = report["sizes_bytes"]
    msg.good(f"Wrote {output_path}")
    print(json.dumps({"sizes_bytes": sizes, "fusion_statistics": report["fusion_statistics"], "vocabulary": report["vocabulary"], "pruning": report["pruning"], "parity": report["parity"]}, indent=2))


@bertprod_cli.command("benchmark")
def benchmark_cli(
    pipelines: List[str] = typer.Argument(..., help="Pipeline folders; the first is the baseline for the 'x first' column"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    n_process: int = typer.Option(1, "--n-process"),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes over the data (after a warm-up)"),
    latency_docs: int = typer.Option(200, "--latency-docs", help="Docs timed one at a time for p50/p95 latency"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the full results as JSON"),
):
    """Words/s, batch-1 latency, peak RSS, size and load time per pipeline, plus the bare ONNX session."""
    from .benchmark import format_table, run_benchmark, write_json
    from .texts import read_texts

    try:
        texts = read_texts(data, limit)
        report = run_benchmark(pipelines, texts, batch_size=batch_size, n_process=n_process, repeats=repeats, latency_docs=latency_docs)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        msg.fail(str(err), exits=1)
    print(format_table(report))
    if output is not None:
        write_json(report, output)
        msg.good(f"Wrote {output}")


@bertprod_cli.command("invariance")
def invariance_cli(
    pipeline: str = typer.Argument(..., help="Pipeline folder or installed package name"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_sizes: str = typer.Option("1,16,64,256", "--batch-sizes", help="Comma-separated nlp.pipe batch sizes to compare with nlp(text)"),
    n_process: int = typer.Option(2, "--n-process", help="Also compare nlp.pipe(n_process=N) (1: skip)"),
    cats_tolerance: float = typer.Option(1e-4, "--cats-tolerance", help="Largest textcat score difference that still counts as the same"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the results as JSON"),
):
    """Same text, same answer? Share of docs whose predictions alone equal those in batches,
    at other batch sizes, in shuffled order and in other processes."""
    import spacy

    from .compress.parity import batch_invariance
    from .texts import read_texts

    try:
        texts = read_texts(data, limit)
        sizes = [int(x) for x in batch_sizes.split(",") if x.strip()]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"--batch-sizes needs positive integers, got '{batch_sizes}'.")
        nlp = spacy.load(pipeline)
        result = batch_invariance(nlp, texts, sizes, n_process=n_process, cats_tolerance=cats_tolerance)
    except (ValueError, FileNotFoundError, OSError) as err:
        msg.fail(str(err), exits=1)
    result["pipeline"] = pipeline
    print(json.dumps(result, indent=2))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2), encoding="utf8")
        msg.good(f"Wrote {output}")


@bertprod_cli.command("make-student")
def make_student_cli(
    teacher: Path = typer.Argument(..., help="Teacher: a model directory or a trained pipeline with a transformer", exists=True),
    output: Path = typer.Argument(..., help="Folder for the student model (config.json, model.safetensors, tokenizer)"),
    layers: int = typer.Option(3, "--layers", "-l", help="Student depth"),
    pick: str = typer.Option("spread", "--pick", help="Which teacher layers: 'spread' (evenly spaced, top layer kept: 6 -> 3 takes 1,3,5) or 'bottom' (the first ones: 0,1,2)"),
    layer_map: str = typer.Option("", "--layer-map", help="Comma-separated teacher layers (0-based) to copy; overrides --pick"),
    prune_heads: float = typer.Option(0.0, "--prune-heads", help="Also remove this share of the teacher's attention heads, least important on --prune-data first"),
    prune_ffn: float = typer.Option(0.0, "--prune-ffn", help="Also remove this share of every layer's feed-forward units, least important on --prune-data first"),
    prune_data: Optional[Path] = typer.Option(None, "--prune-data", help="Labelled .spacy docs (e.g. the dev set) whose loss through the teacher pipeline ranks heads and units"),
):
    """Initialise a shallower (and with --prune-*, narrower) student encoder from a teacher's layers."""
    from .distill.student import make_student

    try:
        info = make_student(
            teacher, output, layers, [int(x) for x in layer_map.split(",") if x.strip()] or None, pick=pick,
            prune_heads=prune_heads, prune_ffn=prune_ffn, prune_data=_optional_path(prune_data),
        )
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Student with {info['student_layers']} layers (teacher layers {info['layer_map']}) in {output}")
    print(json.dumps(info, indent=2))


@bertprod_cli.command("augment")
def augment_cli(
    train_path: Path = typer.Argument(..., help="Gold training docs (.spacy)"),
    output_path: Path = typer.Argument(..., help="Where to write the transfer set (.spacy, unannotated)"),
    encoder: Path = typer.Option(..., "--encoder", help="Where the replacement words come from: the teacher (a trained torch pipeline) or its model directory"),
    n_variants: int = typer.Option(10, "--n-variants", "-n", help="Word-replacement variants per training doc (0: raw text only)"),
    replace_prob: float = typer.Option(0.4, "--replace-prob", help="Probability that an eligible word is replaced"),
    n_neighbours: int = typer.Option(15, "--neighbours", help="Replacement candidates per word: its nearest wordpieces in the encoder's embedding"),
    replace_stop_words: bool = typer.Option(True, "--replace-stop-words/--keep-stop-words", help="Whether the language's stop words may be replaced too (--keep-stop-words: variants stay closer to real text)"),
    raw_text: Optional[Path] = typer.Option(None, "--raw-text", help="Unlabelled in-domain texts to add (.txt lines, .jsonl with 'text', or .spacy)"),
    raw_limit: int = typer.Option(0, "--raw-limit", help="Use only the first N raw texts (0: all)"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits the raw texts"),
    seed: int = typer.Option(0, "--seed"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON here"),
):
    """Make a distillation transfer set: TinyBERT-style word replacement plus raw text (label it with teacher-label)."""
    from .distill.augment import make_transfer_set

    try:
        info = make_transfer_set(
            train_path, encoder, output_path, n_variants=n_variants, replace_prob=replace_prob,
            n_neighbours=n_neighbours, replace_stop_words=replace_stop_words, raw_text=_optional_path(raw_text), raw_limit=raw_limit, lang=lang, seed=seed,
        )
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Wrote {output_path}: {info['transfer_docs']:,} docs")
    _print_and_write(info, report)


@bertprod_cli.command("teacher-label")
def teacher_label_cli(
    teacher: Path = typer.Argument(..., help="Trained teacher pipeline (a compressed ONNX one is fastest)", exists=True, file_okay=False),
    input_paths: List[Path] = typer.Argument(..., help="Docs to label (.spacy): gold training docs and/or a transfer set"),
    output_path: Path = typer.Option(..., "--output", "-o", help="Where to write the teacher-labelled docs (.spacy)"),
    soft_weight: float = typer.Option(0.5, "--soft-weight", help="Weight of the teacher's textcat scores against gold, where a doc has gold"),
    temperature: float = typer.Option(1.0, "--temperature", "-T", help="Softmax temperature of the teacher's textcat probabilities (>1: softer)"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON here"),
):
    """Label docs with the teacher once and store it: soft textcat targets, silver entities where there is no gold."""
    from .distill.targets import teacher_label

    try:
        info = teacher_label(teacher, input_paths, output_path, soft_weight=soft_weight, temperature=temperature, batch_size=batch_size)
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Wrote {output_path}")
    _print_and_write(info, report)


@bertprod_cli.command("data")
def data_cli(
    task: str = typer.Argument(..., help="ner, textcat or textcat_multilabel"),
    output: Path = typer.Argument(..., help="Folder for train.spacy, dev.spacy, test.spacy, labels.json and data.json"),
    train: Path = typer.Option(..., "--train", help="Training data: .spacy, CoNLL/IOB, .jsonl (NER spans or text+label(s)), .csv/.tsv"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data (same formats); none: a fixed stratified share of train is carved off"),
    test: Path = typer.Option(..., "--test", help="Test data (same formats)"),
    train_limit: int = typer.Option(0, "--train-limit", help="Keep about N training docs (0: all)"),
    eval_limit: int = typer.Option(0, "--eval-limit", help="Keep about N dev and N test docs (0: all)"),
    dev_share: float = typer.Option(0.1, "--dev-share", help="Share of train carved off as dev when no dev file is given"),
    seed: int = typer.Option(0, "--seed", help="Seed of the dev carve and of the stratified slices"),
    lang: str = typer.Option("en", "--lang", help="spaCy language whose tokenizer splits raw texts"),
    multilabel: str = typer.Option("false", "--multilabel", help="textcat only: true for multi-label data (any number of labels per text)"),
    config: Optional[Path] = typer.Option(None, "--config", help="Base training config: written to OUTPUT/config.cfg for the task (multi-label, language)"),
):
    """Check and convert labelled data to .spacy splits, before any training starts."""
    from .corpora import prepare_ner, prepare_textcat
    from .corpora.config import config_for_task

    if task not in ("ner", "textcat", "textcat_multilabel"):
        msg.fail(f"Unknown task '{task}': use ner, textcat or textcat_multilabel.", exits=1)
    if multilabel.lower() not in ("true", "false", "1", "0"):
        msg.fail(f"--multilabel takes true or false, not '{multilabel}'.", exits=1)
    if task == "textcat" and multilabel.lower() in ("true", "1"):
        task = "textcat_multilabel"
    dev = _optional_path(dev)
    try:
        if task == "ner":
            info = prepare_ner(train, dev, test, output, train_limit=train_limit, eval_limit=eval_limit, dev_share=dev_share, seed=seed, lang=lang)
        else:
            info = prepare_textcat(train, dev, test, output, multilabel=task == "textcat_multilabel", train_limit=train_limit,
                                   eval_limit=eval_limit, dev_share=dev_share, seed=seed, lang=lang)
        if config is not None:
            config_for_task(config, task, lang).to_disk(output / "config.cfg", interpolate=False)
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    for name, split in info["splits"].items():
        msg.info(f"{name}: " + ", ".join(f"{v:,} {k}" for k, v in split.items()))
    if "dev_carved" in info:
        msg.warn(f"No dev file given: carved a stratified {info['dev_carved']['share']:.0%} of {train} off as dev (seed {seed}).")
    for name, f in info["files"].items():
        for why, n in {**f["skipped"], **f["repaired"]}.items():
            msg.warn(f"{f['path']}: {n:,} x {why}")
    msg.good(f"{len(info['labels'])} labels -> {output}: {', '.join(info['labels'][:20])}{' ...' if len(info['labels']) > 20 else ''}")


@bertprod_cli.command("serve")
def serve_cli(
    pipeline: str = typer.Argument(..., help="Installed package name or pipeline folder"),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the pipeline"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads per worker (0: the pipeline's setting; cores/workers with --workers > 1)"),
    spin: bool = typer.Option(False, "--spin/--no-spin", help="Let ONNX Runtime's idle threads spin (off by default: they would take the CPU the event loop needs)"),
    max_batch_words: int = typer.Option(4096, "--max-batch-words", help="Micro-batch word budget"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Longest a request waits for batch-mates"),
    max_queue_texts: int = typer.Option(8192, "--max-queue-texts", help="Texts that may wait; beyond it: 503 + Retry-After"),
    max_body_bytes: int = typer.Option(2 * 1024 * 1024, "--max-body-bytes"),
    max_texts: int = typer.Option(1000, "--max-texts", help="Texts per request"),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Characters per text (longer: 413, never truncated)"),
    body_timeout_s: float = typer.Option(10.0, "--body-timeout", help="Seconds a request body may take to arrive (slow bodies: 408)"),
    limit_concurrency: int = typer.Option(1024, "--limit-concurrency", help="Open connections per worker before uvicorn answers 503"),
    log_level: str = typer.Option("info", "--log-level"),
):
    """HTTP service: POST /v1/process, GET /health, GET /metrics, with dynamic micro-batching."""
    from .serving.server import run_server
    from .serving.settings import ServeSettings

    try:
        settings = ServeSettings(pipeline=pipeline, threads=threads, allow_spinning=spin, max_batch_words=max_batch_words, max_wait_ms=max_wait_ms,
                                 max_queue_texts=max_queue_texts, max_body_bytes=max_body_bytes, max_texts=max_texts,
                                 max_chars=max_chars, body_timeout_s=body_timeout_s)
        run_server(settings, host=host, port=port, workers=workers, limit_concurrency=limit_concurrency, log_level=log_level)
    except (ValueError, ImportError) as err:
        msg.fail(str(err), exits=1)


@bertprod_cli.command("loadtest")
def loadtest_cli(
    url: str = typer.Argument(..., help="The service, e.g. http://127.0.0.1:8000"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    concurrency: int = typer.Option(32, "--concurrency", "-c", help="Concurrent clients"),
    texts_per_request: int = typer.Option(1, "--texts-per-request"),
    repeats: int = typer.Option(1, "--repeats", help="Passes over the texts"),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Also run the texts through this pipeline in-process: speed ratio and same-answer share"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the results as JSON"),
):
    """Latency percentiles, requests/s, words/s and errors at N concurrent clients (vs in-process nlp.pipe)."""
    from .serving.loadtest import loadtest
    from .texts import read_texts

    try:
        result = loadtest(url, read_texts(data, limit), concurrency=concurrency, texts_per_request=texts_per_request,
                          repeats=repeats, pipeline=pipeline)
    except (ValueError, FileNotFoundError, ImportError) as err:
        msg.fail(str(err), exits=1)
    _print_and_write(result, output)


@bertprod_cli.command("apply")
def apply_cli(
    pipeline: str = typer.Argument(..., help="Installed package name or pipeline folder"),
    input_path: Path = typer.Argument(..., help="JSONL or Parquet with a text field; other fields are passed through"),
    output: Path = typer.Argument(..., help="Folder of shards (part-NNNNN.jsonl or .spacy); rerun to resume"),
    engine: str = typer.Option("local", "--engine", help="local (nlp.pipe, n_process=--workers) or ray (Ray Data actor pool)"),
    workers: int = typer.Option(1, "--workers", help="Processes (local) or Ray actors (ray)"),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime threads per worker (0: cores / workers locally, 1 per Ray actor; Ray reserves that many CPUs per actor)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local one, or RAY_ADDRESS)"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (entities and cats per record) or spacy (DocBins)"),
    text_field: str = typer.Option("text", "--text-field"),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Records per output shard"),
    batch_size: int = typer.Option(64, "--batch-size"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard the shards of an earlier job in OUTPUT"),
):
    """Annotate a corpus into resumable shards, locally or on Ray."""
    from .serving.apply import ApplyError, apply

    try:
        result = apply(pipeline, input_path, output, engine=engine, fmt=fmt, text_field=text_field, shard_size=shard_size,
                       batch_size=batch_size, workers=workers, address=address, overwrite=overwrite, threads=threads)
    except (ApplyError, FileNotFoundError, ImportError, OSError) as err:
        msg.fail(str(err), exits=1)
    print(json.dumps(result, indent=2))
