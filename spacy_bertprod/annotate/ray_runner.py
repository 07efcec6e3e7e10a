"""The Ray runner: Ray Data `map_batches` over the pending shards with an actor pool; each actor
loads the pipeline once, with `job.threads` cores; Ray restarts a dead actor and retries its shard.
With Ray on several machines, INPUT and OUTPUT must be on storage every node sees."""

import json
from dataclasses import asdict, replace
from typing import Any, Dict, Iterator, List

from ..errors import Errors, MissingPackage
from ..serving.loading import load_pipeline
from .job import AnnotationJob
from .shards import Shard, annotate_shard


class ShardAnnotator:
    """The Ray actor: loads the pipeline once, then annotates whole shards."""

    def __init__(self, job: AnnotationJob):
        self.nlp = load_pipeline(job.pipeline, threads=job.threads, allow_spinning=False)
        self.job = job

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        job, infos = self.job, []
        for values in zip(batch["index"], batch["first"], batch["count"], batch["offset"]):
            shard = Shard(*(int(v) for v in values))
            infos.append(
                annotate_shard(self.nlp, job.input_path, job.output, shard, job.text_field, job.fmt, job.batch_size)
            )
        return {"info": [json.dumps(i) for i in infos]}


def run_ray(job: AnnotationJob, pending: List[Shard]) -> Iterator[Dict[str, Any]]:
    try:
        import ray
    except ImportError as err:
        raise MissingPackage(
            Errors.E003.format(what="--engine ray", package="Ray", install="'spacy_bertprod[ray]'")
        ) from err
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=job.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        shards = ray.data.from_items([asdict(s) for s in pending], override_num_blocks=len(pending))
        everywhere = replace(job, input_path=job.input_path.resolve(), output=job.output.resolve())
        annotated = shards.map_batches(
            ShardAnnotator,
            fn_constructor_args=(everywhere,),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=job.workers),
            num_cpus=job.threads,
        )
        for row in annotated.iter_rows():
            yield json.loads(row["info"])
    finally:
        if started_here:
            ray.shutdown()
