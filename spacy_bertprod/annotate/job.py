"""One annotation job, as both runners (local processes, Ray actors) and the manifest see it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import InvalidInput

ENGINES = ("local", "ray")
FORMATS = ("jsonl", "spacy")


class ApplyError(InvalidInput):
    """The job cannot run as asked (bad input, a folder from another job); the message says why."""


@dataclass(frozen=True)
class AnnotationJob:
    """What to annotate with what, where the shards go, and how the work is spread."""

    pipeline: str
    input_path: Path
    output: Path
    text_field: str = "text"
    fmt: str = "jsonl"
    shard_size: int = 10_000
    batch_size: int = 64
    engine: str = "local"
    workers: int = 1
    threads: int = 0  # ONNX Runtime intra-op threads per worker (0: decided by the engine)
    address: Optional[str] = None  # a Ray cluster's address (None: start a local one)

    def check(self) -> None:
        """Refuse settings that cannot work, before anything is read."""
        if self.engine not in ENGINES:
            raise ApplyError(f"--engine must be 'local' or 'ray', not {self.engine!r}.")
        if self.fmt not in FORMATS:
            raise ApplyError(f"--format must be 'jsonl' or 'spacy', not {self.fmt!r}.")
        if self.workers < 1:
            raise ApplyError(f"--workers must be at least 1, got {self.workers}.")
        if self.threads < 0:
            raise ApplyError(f"--threads must be 0 (automatic) or more, got {self.threads}.")

    def description(self, n_records: int) -> Dict[str, Any]:
        """What makes OUTPUT's shards this job's (the manifest): another input, pipeline or cut is another job."""
        stat = self.input_path.stat()
        return {
            "input": str(self.input_path.resolve()),
            "input_bytes": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "pipeline": str(self.pipeline),
            "text_field": self.text_field,
            "shard_size": self.shard_size,
            "format": self.fmt,
            "records": n_records,
        }
