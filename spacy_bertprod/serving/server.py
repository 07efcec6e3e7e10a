"""Starting uvicorn: one process, or N worker processes that share the port."""

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import Errors, InvalidInput, MissingFile, MissingPackage
from .loading import threads_per_worker
from .settings import ENV_VAR, ServeSettings


def api_keys_from(keys: Sequence[str], env_var: str = "") -> List[str]:
    """The keys given on the command line plus those in the environment variable `env_var`."""
    found = [k for k in keys if k]
    if env_var:
        if env_var not in os.environ:
            raise InvalidInput(f"--api-key-env {env_var}: the environment variable {env_var} is not set.")
        found += [k.strip() for k in os.environ[env_var].split(",") if k.strip()]
        if not found:
            raise InvalidInput(f"--api-key-env {env_var}: the environment variable {env_var} holds no key.")
    return found


def check_tls(certfile: Optional[Path], keyfile: Optional[Path]) -> Dict[str, str]:
    """uvicorn's ssl_* arguments, refused before start when one file is missing or unreadable."""
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise InvalidInput("TLS needs both --ssl-certfile and --ssl-keyfile.")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(certfile), str(keyfile))
    except (OSError, ssl.SSLError) as err:
        raise InvalidInput(f"Cannot use {certfile} / {keyfile} for TLS: {err}. Pass a PEM certificate and its key.")
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def check_pipeline_exists(pipeline: str) -> None:
    """Refuse a pipeline that is neither a folder nor an installed package before the server starts,
    instead of starting it and failing in the workers."""
    import spacy.util

    if Path(pipeline).exists() or spacy.util.is_package(pipeline):
        return
    raise MissingFile(
        f"No pipeline '{pipeline}': it is neither a folder nor an installed package. Give the folder a compressed "
        "pipeline was written to (bertprod compress) or the name of a package built from one (spacy package)."
    )


def run_server(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    limit_concurrency: int = 1024,
    graceful_timeout_s: float = 30.0,
    log_level: str = "info",
    ssl_certfile: Optional[str] = None,
    ssl_keyfile: Optional[str] = None,
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish (up to `graceful_timeout_s`)."""
    try:
        import uvicorn
    except ImportError as err:
        raise MissingPackage(
            Errors.E003.format(what="`bertprod serve`", package="the serve extra", install="'spacy_bertprod[serve]'")
        ) from err
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}.")
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port must be a TCP port in 1..65535, got {port}.")
    if limit_concurrency < 1:
        raise InvalidInput(f"--limit-concurrency must be at least 1, got {limit_concurrency}.")
    check_pipeline_exists(settings.pipeline)
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
    if ssl_certfile:
        common.update(ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    if workers == 1:
        from .app import create_app

        uvicorn.run(create_app(settings), **common)
    else:
        os.environ[ENV_VAR] = settings.to_env()
        uvicorn.run("spacy_bertprod.serving.app:create_app_from_env", factory=True, workers=workers, **common)
