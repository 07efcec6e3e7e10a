"""The shards of an annotation job: how INPUT is cut (shard k = records k·S … k·S+S-1, always the
same), how one shard is read, annotated and written atomically (`part-00007.jsonl` or `.spacy`,
then `part-00007.done.json`), and the manifest that ties OUTPUT to one job.
"""

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Tuple

from .job import ApplyError

MANIFEST = "_apply.json"
RESULT_FIELDS = ("ents", "cats")


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
    from ..serving.schema import doc_to_json
    from ..streaming import drop_hidden_states

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


def read_output(output: Path) -> Iterator[Dict[str, Any]]:
    """Every annotated record of a finished JSONL job, in input order (for checks and tests)."""
    for part in sorted(Path(output).glob("part-*.jsonl")):
        with part.open(encoding="utf8") as f:
            for line in f:
                yield json.loads(line)
