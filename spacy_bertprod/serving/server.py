"""Starting uvicorn: one process, or N worker processes that share the port."""

import os

from .loading import threads_per_worker
from .settings import ENV_VAR, ServeSettings


def run_server(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    limit_concurrency: int = 1024,
    graceful_timeout_s: float = 30.0,
    log_level: str = "info",
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish (up to `graceful_timeout_s`)."""
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError("`bertprod serve` needs the serve extra: pip install 'spacy_bertprod[serve]'") from err
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}.")
    if workers > 1 and settings.threads == 0:
        # N processes on C cores: give each its share instead of C threads each fighting for them.
        settings.threads = threads_per_worker(workers)
    common = dict(
        host=host,
        port=port,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=graceful_timeout_s,
        log_level=log_level,
    )
    if workers == 1:
        from .app import create_app

        uvicorn.run(create_app(settings), **common)
    else:
        os.environ[ENV_VAR] = settings.to_env()
        uvicorn.run("spacy_bertprod.serving.app:create_app_from_env", factory=True, workers=workers, **common)
