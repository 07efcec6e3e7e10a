"""Teacher-made training targets, computed once and stored: soft textcat scores and silver entities.

Textcat: a doc's cats become the teacher's probabilities at a temperature T (exclusive labels:
p_i^(1/T) renormalised, i.e. softmax(logits / T); multi-label: sigmoid(logit / T) per label).
Docs with gold cats get `soft_weight * teacher + (1 - soft_weight) * gold`; docs without (the
transfer set) get the teacher's alone. spaCy's textcat gradient is `scores - targets` on logits,
so training on these is cross-entropy to the teacher (Hinton et al.'s soft targets).

NER: docs without gold entities (the transfer set) get the teacher's entities (silver). Gold
entities are never overwritten.
"""

import filecmp
import itertools
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer, TextCategorizer
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..errors import InvalidInput
from ..progress import progress
from ..streaming import (
    DEFAULT_SHARD_SIZE,
    ShardFolder,
    chunked,
    count_docs,
    drop_hidden_states,
    files_signature,
    iter_docs,
    spacy_files,
)

logger = logging.getLogger("spacy_bertprod.distill")


def soften(cats: Dict[str, float], temperature: float, exclusive: bool) -> Dict[str, float]:
    """Teacher probabilities at temperature T (T=1: unchanged; T>1: softer)."""
    labels = list(cats)
    p = numpy.clip(numpy.asarray([cats[label] for label in labels], dtype="float64"), 1e-12, 1 - 1e-12)
    if temperature == 1.0:
        out = p / p.sum() if exclusive else p
    elif exclusive:
        logits = numpy.log(p) / temperature
        out = numpy.exp(logits - logits.max())
        out /= out.sum()
    else:
        out = 1.0 / (1.0 + numpy.exp(-(numpy.log(p) - numpy.log1p(-p)) / temperature))
    return {label: float(v) for label, v in zip(labels, out)}


def textcat_kind(nlp: Language) -> Optional[Tuple[str, bool]]:
    """(component name, exclusive) of the pipeline's text classifier, if it has one."""
    for name, proc in nlp.pipeline:
        if isinstance(proc, MultiLabel_TextCategorizer):
            return name, False
        if isinstance(proc, TextCategorizer):
            return name, True
    return None


ENGINES = ("local", "ray")


@dataclass
class LabelSettings:
    """How the teacher's outputs become targets, and how the work is cut up and spread."""

    soft_weight: float = 0.5
    temperature: float = 1.0
    batch_size: int = 64
    engine: str = "local"
    workers: int = 1
    shard_size: int = DEFAULT_SHARD_SIZE
    address: Optional[str] = None

    def check(self) -> None:
        if not 0.0 <= self.soft_weight <= 1.0:
            raise InvalidInput(f"soft_weight must be between 0 and 1, not {self.soft_weight}.")
        if not self.temperature > 0.0:
            raise InvalidInput(f"temperature must be positive, not {self.temperature}.")
        if self.engine not in ENGINES:
            raise InvalidInput(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}.")
        if self.workers < 1:
            raise InvalidInput(f"--workers must be at least 1, not {self.workers}.")
        if self.batch_size < 1 or self.shard_size < 1:
            raise InvalidInput(
                f"--batch-size and --shard-size must be at least 1, not {self.batch_size}, {self.shard_size}."
            )


def teacher_label(teacher_path: Path, input_paths: List[Path], output_path: Path, **settings) -> Dict:
    """Label every doc of the input .spacy files (or folders) with the teacher, into a folder of shards.

    Memory stays flat with the corpus: docs are read a file at a time and labelled and written a
    shard (`shard_size` docs) at a time, and each doc's hidden states are dropped as soon as its
    labels are taken. A rerun of the same job skips the shards already written, so a killed run
    resumes where it stopped. engine "ray" hands the docs (their exact tokens) to `bertprod
    apply`'s Ray actor pool first, so a job of millions of sentences spreads over a cluster; the
    labels are the same either way (same text, same answer).
    """
    options = LabelSettings(**settings)
    options.check()
    files = [f for path in input_paths for f in spacy_files(Path(path))]
    teacher = spacy.load(teacher_path)
    textcat = textcat_kind(teacher)
    has_ner = any(isinstance(proc, EntityRecognizer) for _, proc in teacher.pipeline)
    if textcat is None and not has_ner:
        raise InvalidInput(
            f"The teacher {teacher_path} has neither a text classifier nor an entity recognizer: {teacher.pipe_names}."
        )
    job = _job(teacher_path, files, options)
    shards = ShardFolder(Path(output_path), job, "teacher-label").open(inputs=files)
    if shards.restarted:
        logger.warning(f"{output_path} held another labelling job's shards (other inputs or settings): starting over.")
    total = count_docs(files)
    if options.engine == "local":
        predict = _LocalPredictor(teacher, options)
    else:
        predict = _RayPredictor(teacher_path, files, shards.folder, options)
    targets = Targets(textcat, has_ner, options)
    counts = Counter(docs=0, written_now=0, resumed_docs=0, shards=0)
    docs = progress(iter_docs(files), desc="teacher-label", total=total)
    for index, chunk in enumerate(chunked(docs, options.shard_size)):
        done = shards.done(index)
        if done is None:
            shard_counts = targets.apply(chunk, list(predict(chunk)))  # whole: the memory zone closes here
            done = shards.write(index, chunk, {"counts": dict(shard_counts)})
            counts["written_now"] += len(chunk)
        else:
            predict.skip(len(chunk))
            counts["resumed_docs"] += len(chunk)
        counts.update(done["counts"])
        counts.update(docs=len(chunk), shards=1)
    if not counts["docs"]:
        raise InvalidInput(f"There are no docs to label in {', '.join(str(p) for p in input_paths)}.")
    info = {key: counts[key] for key in ("docs", "shards", "written_now", "resumed_docs", *Targets.COUNTS)}
    info.update(teacher=str(teacher_path), output=str(output_path))
    info.update(soft_weight=options.soft_weight, temperature=options.temperature, engine=options.engine)
    return info


def _job(teacher_path: Path, files: List[Path], options: LabelSettings) -> Dict:
    """What makes two labelling runs the same job (then a rerun resumes): inputs, teacher, targets, cut."""
    return {
        "inputs": files_signature(files),
        "teacher": files_signature([Path(teacher_path)]),
        "soft_weight": options.soft_weight,
        "temperature": options.temperature,
        "shard_size": options.shard_size,
    }


class Targets:
    """Puts the teacher's predictions on the gold docs: soft cats, silver entities where there is no gold."""

    COUNTS = ("soft_cats_mixed_with_gold", "soft_cats_teacher_only", "silver_ner", "gold_ner")

    def __init__(self, textcat: Optional[Tuple[str, bool]], has_ner: bool, options: LabelSettings):
        self.textcat, self.has_ner, self.options = textcat, has_ner, options

    def apply(self, docs: List[Doc], predictions: Iterable["Prediction"]) -> Counter:
        counts: Counter = Counter({key: 0 for key in self.COUNTS})
        for gold, (ents, cats) in zip(docs, predictions):
            if self.textcat is not None and cats:
                soft = soften(cats, self.options.temperature, exclusive=self.textcat[1])
                _set_soft_cats(gold, soft, self.options.soft_weight, counts)
            if self.has_ner:
                _set_silver_ents(gold, ents, counts)
        return counts


Prediction = Tuple[List[Tuple[int, int, str]], Dict[str, float]]


class _LocalPredictor:
    """The teacher run here on each shard's docs (copies with the same tokens, hidden states dropped)."""

    def __init__(self, teacher: Language, options: LabelSettings):
        self.teacher, self.batch_size = teacher, options.batch_size

    def __call__(self, docs: List[Doc]) -> Iterator[Prediction]:
        # The copies' strings and lexemes are freed after each shard (spaCy's memory zone).
        with self.teacher.memory_zone():
            for predicted in self.teacher.pipe(iter_copies(self.teacher.vocab, docs), batch_size=self.batch_size):
                yield [(e.start_char, e.end_char, e.label_) for e in predicted.ents], dict(predicted.cats)
                drop_hidden_states(predicted)

    def skip(self, n: int) -> None:
        pass


class _RayPredictor:
    """The docs, by their tokens, through `bertprod apply --engine ray` first; then read back in input order."""

    def __init__(self, teacher_path: Path, files: List[Path], output: Path, options: LabelSettings):
        from ..annotate import apply, read_output

        records = output / "_ray" / "records.jsonl"
        _write_records(iter_docs(files), records)
        apply(
            str(teacher_path),
            records,
            output / "_ray" / "shards",
            engine="ray",
            shard_size=options.shard_size,
            batch_size=options.batch_size,
            workers=options.workers,
            address=options.address,
        )
        self.rows = read_output(output / "_ray" / "shards")

    def __call__(self, docs: List[Doc]) -> Iterator[Prediction]:
        for row in itertools.islice(self.rows, len(docs)):
            yield [(e["start"], e["end"], e["label"]) for e in row["ents"]], row["cats"]

    def skip(self, n: int) -> None:
        for _ in itertools.islice(self.rows, n):
            pass


def iter_copies(vocab: Vocab, docs: Iterable[Doc]) -> Iterator[Doc]:
    """Unannotated copies with exactly the same tokens, in another pipeline's vocab, one at a time."""
    for d in docs:
        yield Doc(vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d])


def _write_records(docs: Iterable[Doc], path: Path) -> None:
    """One JSONL record per doc with its exact tokens, written line by line. The file is replaced
    only when the docs changed, so a rerun of the same job resumes from the shards already written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf8") as f:
        for d in docs:
            record = {"text": d.text, "words": [t.text for t in d], "spaces": [bool(t.whitespace_) for t in d]}
            f.write(json.dumps(record) + "\n")
    if path.exists() and filecmp.cmp(tmp, path, shallow=False):
        tmp.unlink()
        return
    os.replace(tmp, path)


def _set_soft_cats(gold: Doc, soft: Dict[str, float], soft_weight: float, counts: Counter) -> None:
    if gold.cats:
        gold.cats = {
            label: soft_weight * v + (1 - soft_weight) * gold.cats.get(label, 0.0) for label, v in soft.items()
        }
        counts["soft_cats_mixed_with_gold"] += 1
    else:
        gold.cats = soft
        counts["soft_cats_teacher_only"] += 1


def _set_silver_ents(gold: Doc, ents: List[Tuple[int, int, str]], counts: Counter) -> None:
    """The teacher's entities where the doc has no gold ones (same tokens: every span aligns)."""
    if gold.has_annotation("ENT_IOB"):
        counts["gold_ner"] += 1
        return
    gold.ents = [gold.char_span(start, end, label=label) for start, end, label in ents]
    counts["silver_ner"] += 1
