"""Serving: `serve` (the HTTP service)."""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import bertprod_cli, user_errors


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
