"""Serving: `serve` (HTTP), `loadtest`, `apply` (corpus annotation, local or Ray)."""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import bertprod_cli, report_path, user_errors, write_report


@bertprod_cli.command("serve")
def serve_cli(
    pipeline: str = typer.Argument(..., help="Installed package name or pipeline folder"),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the pipeline"),
    threads: int = typer.Option(
        0,
        "--threads",
        help="ONNX Runtime intra-op threads per worker (0: the pipeline's setting; cores/workers with --workers > 1)",
    ),
    spin: bool = typer.Option(
        False,
        "--spin/--no-spin",
        help="Let ONNX Runtime's idle threads spin (off by default: they would take the CPU the event loop needs)",
    ),
    max_batch_words: int = typer.Option(4096, "--max-batch-words", help="Micro-batch word budget"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Longest a request waits for batch-mates"),
    max_queue_texts: int = typer.Option(
        8192, "--max-queue-texts", help="Texts that may wait; beyond it: 503 + Retry-After"
    ),
    max_body_bytes: int = typer.Option(2 * 1024 * 1024, "--max-body-bytes"),
    max_texts: int = typer.Option(1000, "--max-texts", help="Texts per request"),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Characters per text (longer: 413, never truncated)"),
    body_timeout_s: float = typer.Option(
        10.0, "--body-timeout", help="Seconds a request body may take to arrive (slow bodies: 408)"
    ),
    limit_concurrency: int = typer.Option(
        1024, "--limit-concurrency", help="Open connections per worker before uvicorn answers 503"
    ),
    api_key: List[str] = typer.Option(
        [],
        "--api-key",
        help="Require 'Authorization: Bearer KEY' on every route but /health (repeat for several keys; visible in "
        "`ps`: prefer --api-key-env)",
    ),
    api_key_env: str = typer.Option(
        "", "--api-key-env", help="Name of an environment variable holding the API key(s), comma-separated"
    ),
    open_metrics: bool = typer.Option(False, "--open-metrics", help="With API keys: leave /metrics open"),
    ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM) for https"),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM) for https"),
    log_level: str = typer.Option("info", "--log-level"),
):
    """HTTP service: POST /v1/process, POST /v1/embed, GET /health, GET /metrics, with dynamic micro-batching."""
    from ..serving.server import api_keys_from, check_tls, run_server
    from ..serving.settings import ServeSettings

    with user_errors(OSError):
        keys = api_keys_from(api_key, api_key_env)
        tls = check_tls(ssl_certfile, ssl_keyfile)
        settings = ServeSettings(
            pipeline=pipeline,
            threads=threads,
            allow_spinning=spin,
            max_batch_words=max_batch_words,
            max_wait_ms=max_wait_ms,
            max_queue_texts=max_queue_texts,
            max_body_bytes=max_body_bytes,
            max_texts=max_texts,
            max_chars=max_chars,
            body_timeout_s=body_timeout_s,
            api_keys=keys,
            open_metrics=open_metrics,
        )
        run_server(
            settings,
            host=host,
            port=port,
            workers=workers,
            limit_concurrency=limit_concurrency,
            log_level=log_level,
            **tls,
        )


@bertprod_cli.command("loadtest")
def loadtest_cli(
    url: str = typer.Argument(..., help="The service, e.g. http://127.0.0.1:8000"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    concurrency: int = typer.Option(32, "--concurrency", "-c", help="Concurrent clients"),
    texts_per_request: int = typer.Option(1, "--texts-per-request"),
    repeats: int = typer.Option(1, "--repeats", help="Passes over the texts"),
    pipeline: Optional[str] = typer.Option(
        None,
        "--pipeline",
        help="Also run the texts through this pipeline in-process: speed ratio and same-answer share",
    ),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    endpoint: str = typer.Option("process", "--endpoint", help="process (/v1/process) or embed (/v1/embed)"),
    api_key_env: str = typer.Option("", "--api-key-env", help="Environment variable holding the service's API key"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the results as JSON"),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True, help="Deprecated: --report"),
):
    """Latency percentiles, requests/s, words/s and errors at N concurrent clients (vs in-process nlp.pipe)."""
    from ..serving.loadtest import loadtest
    from ..serving.server import api_keys_from
    from ..texts import read_texts

    report = report_path(report, old_output, "loadtest")
    with user_errors():
        result = loadtest(
            url,
            read_texts(data, limit),
            concurrency=concurrency,
            texts_per_request=texts_per_request,
            repeats=repeats,
            pipeline=pipeline,
            endpoint=endpoint,
            api_key=api_keys_from([], api_key_env)[0] if api_key_env else "",
        )
    write_report(result, report)


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
    from ..serving.apply import ApplyError, apply

    with user_errors(ApplyError, OSError):
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
