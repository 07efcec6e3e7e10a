"""Corpora as streams: read .spacy files a file at a time, write them as a folder of shards.

Every step that walks a corpus (augment, teacher-label, invariance, annotation) must use memory
that does not grow with the corpus: a user's transfer set of half a million docs, or a corpus of
millions, has to pass through a 24 GB machine. So docs are read lazily, one DocBin file at a time
(a DocBin is one compressed msgpack blob: it cannot be read in parts, so what we write is cut
into shards of `shard_size` docs), handled in bounded chunks, and written shard by shard.

A shard folder holds `part-00000.spacy`, `part-00001.spacy`, ... each written atomically (tmp
file, then rename) and followed by its done-marker `part-00000.done.json`, plus `_job.json`
describing the job. A rerun of the same job skips the shards that are done, so a killed job
resumes where it stopped and writes the same output as an uninterrupted one; a rerun of another
job (other inputs or settings) starts over. spaCy's `Corpus` reads such a folder as it is
(`--paths.train FOLDER` walks it for .spacy files).
"""

import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, TypeVar

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .errors import InvalidInput, MissingFile

T = TypeVar("T")

DEFAULT_SHARD_SIZE = 10_000
JOB_FILE = "_job.json"


def spacy_files(path: Path) -> List[Path]:
    """The .spacy files a path names: the file itself, or every .spacy file under a folder, sorted."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"Docs {path} do not exist.")
    if path.is_file():
        if path.suffix != ".spacy":
            raise InvalidInput(f"{path} is not a .spacy file (spaCy's DocBin) or a folder of them.")
        return [path]
    files = sorted(p for p in path.rglob("*.spacy") if p.is_file())
    if not files:
        raise InvalidInput(f"{path} is a folder with no .spacy files in it.")
    return files


def iter_docs(paths: Iterable[Path], vocab: Optional[Vocab] = None) -> Iterator[Doc]:
    """Every doc of the .spacy files or folders, in order, holding one file in memory at a time.
    Every path is checked here, before the first doc is asked for.

    Without `vocab`, each file's docs get a fresh Vocab that goes when they go: a shared vocab
    keeps every string it ever saw, and a corpus of millions has millions of distinct tokens."""
    files = [f for path in paths for f in spacy_files(path)]
    return (doc for file in files for doc in DocBin().from_disk(file).get_docs(vocab or Vocab()))


def count_docs(paths: Iterable[Path]) -> int:
    """How many docs the .spacy files or folders hold (reads each file's header, one at a time)."""
    import zlib

    import srsly

    total = 0
    for path in paths:
        for file in spacy_files(path):
            lengths = srsly.msgpack_loads(zlib.decompress(file.read_bytes()))["lengths"]
            total += len(lengths) // 4  # int32 token counts, one per doc
    return total


def chunked(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def drop_hidden_states(doc: Doc) -> Doc:
    """Forget the transformer output a pipeline left on the doc (its largest part by far)."""
    if Doc.has_extension("trf_data"):  # ours, spacy-transformers' and spacy-curated-transformers' name
        doc._.trf_data = None
    return doc


def files_signature(paths: Sequence[Path]) -> List[Dict[str, Any]]:
    """Name, size and modification time of every file under the paths: what says a job's inputs changed."""
    out = []
    for path in paths:
        path = Path(path)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            out.append({"path": str(file.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return out


class ShardFolder:
    """A folder of .spacy shards of one job, written atomically, each with a done-marker."""

    def __init__(self, folder: Path, job: Dict[str, Any], what: str):
        self.folder = Path(folder)
        self.job = job
        self.what = what
        self.restarted = False

    def open(self, inputs: Sequence[Path] = (), fresh: bool = False) -> "ShardFolder":
        """Create the folder, keep the shards of this same job (unless `fresh`), start over for another
        job. `inputs` may not lie inside it (starting over would delete them)."""
        inside = [p for p in inputs if self.folder.resolve() in (Path(p).resolve(), *Path(p).resolve().parents)]
        if inside:
            raise InvalidInput(f"{self.what} cannot write into {self.folder}: it holds its input {inside[0]}.")
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidInput(
                f"{self.folder} is a file, but {self.what} writes a folder of .spacy shards there; remove the file "
                "or give a folder name."
            )
        manifest = self.folder / JOB_FILE
        if self.folder.exists() and any(self.folder.iterdir()):
            if not manifest.exists():
                raise InvalidInput(
                    f"{self.folder} is not empty and was not written by {self.what}; give an empty or new folder."
                )
            if fresh or json.loads(manifest.read_text(encoding="utf8")) != self.job:
                shutil.rmtree(self.folder)
                self.restarted = True
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = manifest.with_name(manifest.name + ".tmp")
        tmp.write_text(json.dumps(self.job, indent=2), encoding="utf8")
        os.replace(tmp, manifest)
        return self

    def paths(self, index: int):
        stem = self.folder / f"part-{index:05d}"
        return stem.with_suffix(".spacy"), stem.with_suffix(".done.json")

    def done(self, index: int) -> Optional[Dict[str, Any]]:
        """The shard's done-marker (what was recorded when it was written), or None."""
        part, marker = self.paths(index)
        if part.exists() and marker.exists():
            return json.loads(marker.read_text(encoding="utf8"))
        return None

    def write(self, index: int, docs: Sequence[Doc], info: Dict[str, Any]) -> Dict[str, Any]:
        """Write one shard (tmp file, then rename), then its marker: both appear whole or not at all."""
        part, marker = self.paths(index)
        tmp = part.with_name(f"{part.name}.tmp-{os.getpid()}")
        DocBin(docs=docs, store_user_data=False).to_disk(tmp)
        os.replace(tmp, part)
        info = {"shard": index, "docs": len(docs), **info}
        tmp_marker = marker.with_name(f"{marker.name}.tmp-{os.getpid()}")
        tmp_marker.write_text(json.dumps(info), encoding="utf8")
        os.replace(tmp_marker, marker)
        return info
