"""`bertprod apply`: annotate a corpus into a folder of shards, on this machine or a Ray cluster.

INPUT is JSONL or Parquet with a text field; every other field is passed through. A record that
also has `words` and `spaces` (lists, as spaCy's Doc takes them) is annotated on exactly those
tokens instead of the pipeline's tokenizer's: how `teacher-label --engine ray` labels docs whose
tokens are fixed (gold training docs). The input is
cut into shards of `shard_size` records (shard k = records k·S … k·S+S-1, always the same), and
each shard is annotated and written atomically by one worker (`part-00007.jsonl` or `.spacy`,
then `part-00007.done.json` with its count, worker and time). A restarted job skips the shards
that are done, so every document is in the output exactly once even when a worker dies mid-run:
a shard that was being written is redone from scratch, never appended to.

Engines: `local` (this process, or N worker processes that each load the pipeline once and
write whole shards, the cores shared out between them) and `ray` (Ray Data `map_batches` over the pending shards with an
actor pool: each actor loads the pipeline once, with `threads` cores; Ray restarts a dead actor
and retries its shard). Both write byte-identical shards for the same pipeline.
With Ray on several machines, INPUT and OUTPUT must be on storage every node sees.
"""

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from .loading import load_pipeline, threads_per_worker

MANIFEST = "_apply.json"
RESULT_FIELDS = ("ents", "cats")


class ApplyError(ValueError):
    """The job cannot run as asked (bad input, a folder from another job); the message says why."""


@dataclass
class Shard:
    index: int
    first: int  # number of the shard's first record in the input
    count: int
    offset: int  # JSONL: byte offset of the first record; Parquet: its row number


def input_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".jsonl") or name.endswith(".ndjson"):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise ApplyError(
        f"{path}: unsupported input type; use JSONL (.jsonl, one JSON object per line) or Parquet (.parquet)."
    )


def _check_record(record: Any, text_field: str, where: str) -> None:
    if not isinstance(record, dict):
        raise ApplyError(f"{where}: a record must be a JSON object, not {type(record).__name__}.")
    if not isinstance(record.get(text_field), str):
        found = "missing" if text_field not in record else f"a {type(record[text_field]).__name__}"
        raise ApplyError(
            f"{where}: the text field '{text_field}' is {found}; every record needs a string there (or pass "
            "--text-field)."
        )
    if "words" in record or "spaces" in record:
        words, spaces = record.get("words"), record.get("spaces")
        if not (isinstance(words, list) and isinstance(spaces, list) and len(words) == len(spaces)):
            raise ApplyError(f"{where}: 'words' and 'spaces' must both be lists of the same length (a Doc's tokens).")
    clash = [f for f in RESULT_FIELDS if f in record]
    if clash:
        raise ApplyError(
            f"{where}: the record already has field(s) {clash}, which the output adds; rename them in the input."
        )


def plan_shards(path: Path, text_field: str, shard_size: int) -> Tuple[List[Shard], int]:
    """Cut the input into shards, checking every record on the way (errors name FILE:LINE or the row)."""
    if shard_size < 1:
        raise ApplyError(f"--shard-size must be at least 1, got {shard_size}.")
    if not path.exists():
        raise ApplyError(f"Input file {path} does not exist.")
    fmt = input_format(path)
    starts: List[Tuple[int, int]] = []  # (record number, offset) of each shard's first record
    n = 0
    if fmt == "jsonl":
        with path.open("rb") as f:
            offset = 0
            for line_no, raw in enumerate(f, 1):
                if raw.strip():
                    where = f"{path}:{line_no}"
                    try:
                        record = json.loads(raw.decode("utf-8"))
                    except UnicodeDecodeError as err:
                        raise ApplyError(
                            f"{where}: not valid UTF-8 (byte {err.start} of the line). Re-encode the file as UTF-8."
                        )
                    except json.JSONDecodeError as err:
                        raise ApplyError(f"{where}: not valid JSON ({err.msg}, column {err.colno}).")
                    _check_record(record, text_field, where)
                    if n % shard_size == 0:
                        starts.append((n, offset))
                    n += 1
                offset += len(raw)
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        if text_field not in names:
            raise ApplyError(f"{path}: no column '{text_field}' (columns: {names}); pass --text-field.")
        clash = [f for f in RESULT_FIELDS if f in names]
        if clash:
            raise ApplyError(f"{path}: the input already has column(s) {clash}, which the output adds; rename them.")
        import pyarrow

        column_type = parquet.schema_arrow.field(text_field).type
        if not (pyarrow.types.is_string(column_type) or pyarrow.types.is_large_string(column_type)):
            raise ApplyError(f"{path}: column '{text_field}' is {column_type}, not a string column.")
        n = parquet.metadata.num_rows
        starts = [(first, first) for first in range(0, n, shard_size)]
    shards = [Shard(i, first, min(shard_size, n - first), offset) for i, (first, offset) in enumerate(starts)]
    return shards, n


def read_shard(path: Path, shard: Shard, text_field: str) -> List[Dict[str, Any]]:
    """The shard's records, in input order."""
    if input_format(path) == "jsonl":
        records = []
        with path.open("rb") as f:
            f.seek(shard.offset)
            while len(records) < shard.count:
                raw = f.readline()
                if not raw:
                    raise ApplyError(
                        f"{path} changed while the job ran (shard {shard.index} ends early); start over with "
                        "--overwrite."
                    )
                if raw.strip():
                    records.append(json.loads(raw.decode("utf-8")))
        return records
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    rows, start = [], 0
    for group in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        lo, hi = max(shard.offset, start), min(shard.offset + shard.count, start + size)
        if lo < hi:
            table = parquet.read_row_group(group).slice(lo - start, hi - lo)
            rows.extend(table.to_pylist())
        start += size
    for i, row in enumerate(rows):
        if not isinstance(row.get(text_field), str):
            raise ApplyError(
                f"{path}: row {shard.offset + i} has no text in column '{text_field}' (null); fill or drop it."
            )
    return rows


def shard_paths(output: Path, shard: Shard, fmt: str) -> Tuple[Path, Path]:
    stem = output / f"part-{shard.index:05d}"
    return stem.with_suffix(".jsonl" if fmt == "jsonl" else ".spacy"), stem.with_suffix(".done.json")


def write_shard(
    output: Path, shard: Shard, fmt: str, text_field: str, records: List[Dict[str, Any]], docs: Iterable, started: float
) -> Dict[str, Any]:
    """Write one annotated shard atomically (tmp file, then rename), then its done-marker.

    `docs` may be a stream: each doc is written as it comes and its hidden states dropped, so a
    shard holds its records and their output, not every doc's transformer data."""
    from ..streaming import drop_hidden_states
    from .schema import doc_to_json

    part, done = shard_paths(output, shard, fmt)
    tmp = part.with_name(f"{part.name}.tmp-{os.getpid()}")
    if fmt == "jsonl":
        with tmp.open("w", encoding="utf8") as f:
            for record, doc in zip(records, docs):
                f.write(json.dumps({**record, **doc_to_json(doc)}, ensure_ascii=False) + "\n")
                drop_hidden_states(doc)
    else:
        from spacy.tokens import DocBin

        docbin = DocBin(store_user_data=True)
        for record, doc in zip(records, docs):
            drop_hidden_states(doc)
            doc.user_data["fields"] = {k: v for k, v in record.items() if k != text_field}
            docbin.add(doc)
        docbin.to_disk(tmp)
    os.replace(tmp, part)
    info = {
        "shard": shard.index,
        "first": shard.first,
        "docs": len(records),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    # The marker too appears whole or not at all: a reader (a restarted job, a monitor) never sees it half written.
    tmp_done = done.with_name(f"{done.name}.tmp-{os.getpid()}")
    tmp_done.write_text(json.dumps(info), encoding="utf8")
    os.replace(tmp_done, done)
    return info


def annotate_shard(
    nlp, input_path: Path, output: Path, shard: Shard, text_field: str, fmt: str, batch_size: int = 64
) -> Dict[str, Any]:
    """Read, annotate and write one shard in this process."""
    started = time.perf_counter()
    records = read_shard(input_path, shard, text_field)
    # Each shard's strings and lexemes are freed when it is written (spaCy's memory zone): a
    # shared vocab would keep every distinct token of the corpus.
    with nlp.memory_zone():
        docs = nlp.pipe((_pipe_input(nlp, r, text_field) for r in records), batch_size=batch_size)
        return write_shard(output, shard, fmt, text_field, records, docs, started)


def _pipe_input(nlp, record: Dict[str, Any], text_field: str):
    """The record's text, or a Doc of its given tokens when it has `words` and `spaces`."""
    if "words" not in record:
        return record[text_field]
    from spacy.tokens import Doc

    return Doc(nlp.vocab, words=record["words"], spaces=record["spaces"])


_WORKER: Dict[str, Any] = {}


def _init_local_worker(pipeline: str, threads: int) -> None:
    _WORKER["nlp"] = load_pipeline(pipeline, threads=threads, allow_spinning=False)


def _annotate_in_worker(
    input_path: Path, output: Path, shard: Shard, text_field: str, fmt: str, batch_size: int
) -> Dict[str, Any]:
    return annotate_shard(_WORKER["nlp"], input_path, output, shard, text_field, fmt, batch_size)


def _run_local(
    pending: List[Shard],
    pipeline: str,
    input_path: Path,
    output: Path,
    text_field: str,
    fmt: str,
    batch_size: int,
    workers: int,
    threads: int,
) -> Iterator[Dict[str, Any]]:
    """Shards annotated in this process, or by `workers` processes that each load the pipeline
    once (with `threads` ONNX Runtime threads) and write whole shards themselves.

    Not `nlp.pipe(n_process=N)`: that ships every doc back to the parent through msgpack, hidden
    states included, and measured 3.4x slower than one process here (reports/serving/).
    """
    if workers == 1:
        nlp = load_pipeline(pipeline, threads=threads)
        for shard in pending:
            yield annotate_shard(nlp, input_path, output, shard, text_field, fmt, batch_size)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_local_worker, initargs=(str(pipeline), threads)
    ) as pool:
        futures = [
            pool.submit(_annotate_in_worker, input_path, output, shard, text_field, fmt, batch_size)
            for shard in pending
        ]
        for future in as_completed(futures):
            yield future.result()


def prepare_output(output: Path, job: Dict[str, Any], overwrite: bool) -> None:
    """Create OUTPUT, or check that it belongs to this very job (then finished shards are kept)."""
    manifest = output / MANIFEST
    if output.exists() and any(output.iterdir()):
        if overwrite:
            for path in output.iterdir():
                if path.name.startswith("part-") or path.name == MANIFEST:
                    path.unlink()
        elif not manifest.exists():
            raise ApplyError(f"{output} is not empty and was not written by `bertprod apply`; choose an empty folder.")
        else:
            previous = json.loads(manifest.read_text(encoding="utf8"))
            changed = sorted(k for k in job if previous.get(k) != job[k])
            if changed:
                raise ApplyError(
                    f"{output} holds another job's shards (different {', '.join(changed)}); use a new folder, or "
                    "--overwrite to start over."
                )
    output.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(job, indent=2), encoding="utf8")


def _job_description(
    input_path: Path, pipeline: str, text_field: str, shard_size: int, fmt: str, n_records: int
) -> Dict[str, Any]:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "pipeline": str(pipeline),
        "text_field": text_field,
        "shard_size": shard_size,
        "format": fmt,
        "records": n_records,
    }


def _report(done: Dict[str, Any], total: int, finished: int, started: float, docs: int) -> None:
    rate = docs / max(time.perf_counter() - started, 1e-9)
    print(
        f"[{finished}/{total}] shard {done['shard']}: {done['docs']} docs in {done['seconds']:.1f}s ({rate:.1f} "
        "docs/s so far)",
        flush=True,
    )


class _ShardAnnotator:
    """The Ray actor: loads the pipeline once, then annotates whole shards."""

    def __init__(
        self, pipeline: str, input_path: str, output: str, text_field: str, fmt: str, batch_size: int, threads: int
    ):
        self.nlp = load_pipeline(pipeline, threads=threads, allow_spinning=False)
        self.args = (Path(input_path), Path(output))
        self.text_field, self.fmt, self.batch_size = text_field, fmt, batch_size

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        infos = []
        for values in zip(batch["index"], batch["first"], batch["count"], batch["offset"]):
            shard = Shard(*(int(v) for v in values))
            infos.append(annotate_shard(self.nlp, *self.args, shard, self.text_field, self.fmt, self.batch_size))
        return {"info": [json.dumps(i) for i in infos]}


def _run_ray(
    pending: List[Shard],
    pipeline: str,
    input_path: Path,
    output: Path,
    text_field: str,
    fmt: str,
    batch_size: int,
    workers: int,
    threads: int,
    address: Optional[str],
) -> Iterator[Dict[str, Any]]:
    try:
        import ray
    except ImportError as err:
        raise ApplyError("--engine ray needs Ray: pip install 'spacy_bertprod[ray]'") from err
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        shards = ray.data.from_items([asdict(s) for s in pending], override_num_blocks=len(pending))
        annotated = shards.map_batches(
            _ShardAnnotator,
            fn_constructor_args=(
                str(pipeline),
                str(input_path.resolve()),
                str(output.resolve()),
                text_field,
                fmt,
                batch_size,
                threads,
            ),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
        )
        for row in annotated.iter_rows():
            yield json.loads(row["info"])
    finally:
        if started_here:
            ray.shutdown()


def apply(
    pipeline: str,
    input_path: Path,
    output: Path,
    *,
    engine: str = "local",
    fmt: str = "jsonl",
    text_field: str = "text",
    shard_size: int = 10_000,
    batch_size: int = 64,
    workers: int = 1,
    address: Optional[str] = None,
    overwrite: bool = False,
    threads: int = 0,
) -> Dict[str, Any]:
    """Annotate INPUT into OUTPUT's shards; returns counts and docs/s of this run."""
    if engine not in ("local", "ray"):
        raise ApplyError(f"--engine must be 'local' or 'ray', not {engine!r}.")
    if fmt not in ("jsonl", "spacy"):
        raise ApplyError(f"--format must be 'jsonl' or 'spacy', not {fmt!r}.")
    if workers < 1:
        raise ApplyError(f"--workers must be at least 1, got {workers}.")
    if threads < 0:
        raise ApplyError(f"--threads must be 0 (automatic) or more, got {threads}.")
    # local: this machine's cores shared by the workers; ray: one core per actor unless told otherwise
    threads = threads or (threads_per_worker(workers) if engine == "local" else 1)
    input_path, output = Path(input_path), Path(output)
    shards, n_records = plan_shards(input_path, text_field, shard_size)
    prepare_output(output, _job_description(input_path, pipeline, text_field, shard_size, fmt, n_records), overwrite)
    pending = [s for s in shards if not all(p.exists() for p in shard_paths(output, s, fmt))]
    print(
        f"{input_path}: {n_records} records in {len(shards)} shard(s); {len(shards) - len(pending)} already done, "
        f"{len(pending)} to annotate ({engine}, {workers} worker(s))",
        flush=True,
    )
    started, docs, finished = time.perf_counter(), 0, len(shards) - len(pending)
    completions: List[Tuple[float, int]] = []  # (time, docs) of each shard written now
    if pending:
        if engine == "local":
            runs = _run_local(pending, pipeline, input_path, output, text_field, fmt, batch_size, workers, threads)
        else:
            runs = _run_ray(
                pending, pipeline, input_path, output, text_field, fmt, batch_size, workers, threads, address
            )
        for info in runs:
            docs, finished = docs + info["docs"], finished + 1
            completions.append((time.perf_counter(), info["docs"]))
            _report(info, len(shards), finished, started, docs)
    seconds = time.perf_counter() - started
    missing = [s.index for s in shards if not all(p.exists() for p in shard_paths(output, s, fmt))]
    if missing:
        raise ApplyError(f"Shards {missing[:10]} were not written; run the same command again to finish them.")
    return {
        "records": n_records,
        "shards": len(shards),
        "annotated_now": docs,
        "skipped_shards": len(shards) - len(pending),
        "seconds": round(seconds, 3),
        "docs_per_s": docs / seconds if docs else None,
        "docs_per_s_after_first_shard": _steady_rate(completions),
        "engine": engine,
        "workers": workers,
        "threads_per_worker": threads,
        "output": str(output),
    }


def _steady_rate(completions: List[Tuple[float, int]]) -> Optional[float]:
    """Docs/s between the first and the last shard written: the rate once the workers have
    loaded the pipeline (start-up is in `seconds`, not here)."""
    if len(completions) < 3:
        return None
    span = completions[-1][0] - completions[0][0]
    return sum(n for _, n in completions[1:]) / span if span > 0 else None


def read_output(output: Path) -> Iterator[Dict[str, Any]]:
    """Every annotated record of a finished JSONL job, in input order (for checks and tests)."""
    for part in sorted(Path(output).glob("part-*.jsonl")):
        with part.open(encoding="utf8") as f:
            for line in f:
                yield json.loads(line)
