"""`bertprod apply`: annotate a corpus into a folder of shards, on this machine or a Ray cluster.

INPUT is JSONL or Parquet with a text field; every other field is passed through. A record that
also has `words` and `spaces` (lists, as spaCy's Doc takes them) is annotated on exactly those
tokens instead of the pipeline's tokenizer's: how `teacher-label --engine ray` labels docs whose
tokens are fixed (gold training docs). The input is cut into shards of `shard_size` records, and
each shard is annotated and written atomically by one worker (shards.py). A restarted job skips
the shards that are done, so every document is in the output exactly once even when a worker dies
mid-run: a shard that was being written is redone from scratch, never appended to.

Engines: `local` (local.py: this process, or N worker processes that each load the pipeline once
and write whole shards, the cores shared out between them) and `ray` (ray_runner.py). Both run the
same `AnnotationJob` and write byte-identical shards for the same pipeline. Progress goes to the
`spacy_bertprod.annotate` logger.
"""

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..serving.loading import threads_per_worker
from .job import AnnotationJob, ApplyError
from .shards import plan_shards, prepare_output, read_output, shard_paths

__all__ = ["AnnotationJob", "ApplyError", "apply", "read_output"]
logger = logging.getLogger("spacy_bertprod.annotate")


def apply(pipeline: str, input_path: Path, output: Path, *, overwrite: bool = False, **settings: Any) -> Dict[str, Any]:
    """Annotate INPUT into OUTPUT's shards; returns counts and docs/s of this run. `settings`: the
    other fields of AnnotationJob (engine, fmt, text_field, shard_size, batch_size, workers,
    threads, address)."""
    job = AnnotationJob(str(pipeline), Path(input_path), Path(output), **settings)
    job.check()
    # local: this machine's cores shared by the workers; ray: one core per actor unless told otherwise
    job = replace(job, threads=job.threads or (threads_per_worker(job.workers) if job.engine == "local" else 1))
    shards, n_records = plan_shards(job.input_path, job.text_field, job.shard_size)
    prepare_output(job.output, job.description(n_records), overwrite)
    pending = [s for s in shards if not all(p.exists() for p in shard_paths(job.output, s, job.fmt))]
    logger.info(
        f"{job.input_path}: {n_records} records in {len(shards)} shard(s); {len(shards) - len(pending)} already "
        f"done, {len(pending)} to annotate ({job.engine}, {job.workers} worker(s))"
    )
    started = time.perf_counter()
    completions = _run(job, pending, len(shards)) if pending else []
    seconds = time.perf_counter() - started
    missing = [s.index for s in shards if not all(p.exists() for p in shard_paths(job.output, s, job.fmt))]
    if missing:
        raise ApplyError(f"Shards {missing[:10]} were not written; run the same command again to finish them.")
    docs = sum(n for _, n in completions)
    return {
        "records": n_records,
        "shards": len(shards),
        "annotated_now": docs,
        "skipped_shards": len(shards) - len(pending),
        "seconds": round(seconds, 3),
        "docs_per_s": docs / seconds if docs else None,
        "docs_per_s_after_first_shard": _steady_rate(completions),
        "engine": job.engine,
        "workers": job.workers,
        "threads_per_worker": job.threads,
        "output": str(job.output),
    }


def _run(job: AnnotationJob, pending, n_shards: int) -> List[Tuple[float, int]]:
    """Run the pending shards on the job's engine; (time, docs) of each shard as it was written."""
    if job.engine == "local":
        from .local import run_local as runner
    else:
        from .ray_runner import run_ray as runner
    started, docs, finished = time.perf_counter(), 0, n_shards - len(pending)
    completions: List[Tuple[float, int]] = []
    for info in runner(job, pending):
        docs, finished = docs + info["docs"], finished + 1
        completions.append((time.perf_counter(), info["docs"]))
        rate = docs / max(time.perf_counter() - started, 1e-9)
        logger.info(
            f"[{finished}/{n_shards}] shard {info['shard']}: {info['docs']} docs in {info['seconds']:.1f}s "
            f"({rate:.1f} docs/s so far)"
        )
    return completions


def _steady_rate(completions: List[Tuple[float, int]]) -> Optional[float]:
    """Docs/s between the first and the last shard written: the rate once the workers have
    loaded the pipeline (start-up is in `seconds`, not here)."""
    if len(completions) < 3:
        return None
    span = completions[-1][0] - completions[0][0]
    return sum(n for _, n in completions[1:]) / span if span > 0 else None
