"""The local runner: shards annotated in this process, or by worker processes on this machine."""

from typing import Any, Dict, Iterator, List

from ..serving.loading import load_pipeline
from .job import AnnotationJob
from .shards import Shard, annotate_shard

_WORKER: Dict[str, Any] = {}


def _init_worker(pipeline: str, threads: int) -> None:
    _WORKER["nlp"] = load_pipeline(pipeline, threads=threads, allow_spinning=False)


def _annotate_in_worker(job: AnnotationJob, shard: Shard) -> Dict[str, Any]:
    return annotate_shard(_WORKER["nlp"], job.input_path, job.output, shard, job.text_field, job.fmt, job.batch_size)


def run_local(job: AnnotationJob, pending: List[Shard]) -> Iterator[Dict[str, Any]]:
    """Shards annotated in this process, or by `job.workers` processes that each load the pipeline
    once (with `job.threads` ONNX Runtime threads) and write whole shards themselves.

    Not `nlp.pipe(n_process=N)`: that ships every doc back to the parent through msgpack, hidden
    states included, and measured 3.4x slower than one process here (reports/serving/).
    """
    if job.workers == 1:
        nlp = load_pipeline(job.pipeline, threads=job.threads)
        for shard in pending:
            yield annotate_shard(nlp, job.input_path, job.output, shard, job.text_field, job.fmt, job.batch_size)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        job.workers, mp_context=context, initializer=_init_worker, initargs=(str(job.pipeline), job.threads)
    ) as pool:
        futures = [pool.submit(_annotate_in_worker, job, shard) for shard in pending]
        for future in as_completed(futures):
            yield future.result()
