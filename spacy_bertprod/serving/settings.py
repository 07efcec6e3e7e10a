"""The service's limits and batching knobs, in one place (CLI flags and tests fill it)."""

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional

from ..errors import InvalidInput

ENV_VAR = "BERTPROD_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    """What one service process accepts and how it batches.

    max_batch_words: a micro-batch closes when its texts hold this many whitespace-separated
        words (a text longer than that is a batch of its own; nothing is cut).
    max_wait_ms: ...or when its first request has waited this long.
    max_queue_texts: texts waiting for a batch; a request beyond it gets 503 + Retry-After.
    max_drain_bytes: an oversized body is read and discarded up to this many bytes before the 413,
        so that clients still sending it receive the answer instead of a reset connection.
    api_keys: when any, every route but /health (and /metrics with open_metrics) needs
        `Authorization: Bearer KEY` with one of them (access.py).
    """

    pipeline: str = ""
    threads: int = 0
    allow_spinning: Optional[bool] = False
    max_batch_words: int = 4096
    max_wait_ms: float = 5.0
    max_queue_texts: int = 8192
    max_body_bytes: int = 2 * 1024 * 1024
    max_texts: int = 1000
    max_chars: int = 100_000
    body_timeout_s: float = 10.0
    retry_after_s: int = 1
    warmup: bool = True
    max_drain_bytes: int = 64 * 1024 * 1024
    api_keys: List[str] = field(default_factory=list)
    open_metrics: bool = False

    def __post_init__(self) -> None:
        positive = ["max_batch_words", "max_queue_texts", "max_body_bytes", "max_texts", "max_chars"]
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise InvalidInput(f"Serve setting {name} must be at least 1, got {getattr(self, name)}.")
        for name in ("max_wait_ms", "body_timeout_s"):
            if float(getattr(self, name)) < 0:
                raise InvalidInput(f"Serve setting {name} must not be negative, got {getattr(self, name)}.")
        if any(not key or key != key.strip() or len(key) < 16 for key in self.api_keys):
            raise InvalidInput(
                "Every API key must be at least 16 characters without surrounding spaces (e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        if self.threads < 0:
            raise InvalidInput(f"Serve setting threads must be 0 (automatic) or more, got {self.threads}.")

    def __repr__(self) -> str:  # never print the keys
        shown = {k: v for k, v in asdict(self).items() if k != "api_keys"}
        return f"ServeSettings({shown}, api_keys=<{len(self.api_keys)} keys>)"

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        """Worker processes started by uvicorn get their settings through the environment."""
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise InvalidInput(f"{ENV_VAR} is not set: start the service with `python -m spacy bertprod serve`.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})
