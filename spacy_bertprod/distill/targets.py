"""Teacher-made training targets, computed once and stored: soft textcat scores and silver entities.

Textcat: a doc's cats become the teacher's probabilities at a temperature T (exclusive labels:
p_i^(1/T) renormalised, i.e. softmax(logits / T); multi-label: sigmoid(logit / T) per label).
Docs with gold cats get `soft_weight * teacher + (1 - soft_weight) * gold`; docs without (the
transfer set) get the teacher's alone. spaCy's textcat gradient is `scores - targets` on logits,
so training on these is cross-entropy to the teacher (Hinton et al.'s soft targets).

NER: docs without gold entities (the transfer set) get the teacher's entities (silver). Gold
entities are never overwritten.
"""

import json
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer, TextCategorizer
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer
from spacy.tokens import Doc, DocBin

from ..progress import progress
from .hidden import copy_docs


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


def teacher_label(
    teacher_path: Path,
    input_paths: List[Path],
    output_path: Path,
    soft_weight: float = 0.5,
    temperature: float = 1.0,
    batch_size: int = 64,
    engine: str = "local",
    workers: int = 1,
    shard_size: int = 10_000,
    address: Optional[str] = None,
) -> Dict:
    """Label every doc of the input .spacy files with the teacher and write one .spacy file.

    engine "local" runs the teacher here; "ray" hands the docs (their exact tokens) to
    `bertprod apply`'s Ray actor pool in shards kept in OUTPUT.shards/, so a job of millions of
    sentences spreads over a cluster, survives a dead worker and resumes where it stopped; the
    labels are the same either way (same text, same answer).
    """
    check_settings(soft_weight, temperature, engine, workers)
    teacher = spacy.load(teacher_path)
    textcat = textcat_kind(teacher)
    has_ner = any(isinstance(proc, EntityRecognizer) for _, proc in teacher.pipeline)
    if textcat is None and not has_ner:
        raise ValueError(
            f"The teacher {teacher_path} has neither a text classifier nor an entity recognizer: {teacher.pipe_names}."
        )
    docs = read_docs(input_paths, teacher.vocab)
    if engine == "local":
        predictions = _local_predictions(teacher, docs, batch_size)
    else:
        shards = Path(str(output_path) + ".shards")
        predictions = _ray_predictions(teacher_path, docs, shards, batch_size, workers, shard_size, address)
    counts = {"docs": len(docs), "soft_cats_mixed_with_gold": 0, "soft_cats_teacher_only": 0}
    counts.update(silver_ner=0, gold_ner=0)
    out = DocBin(store_user_data=False)
    for gold, (ents, cats) in zip(docs, progress(predictions, desc="teacher-label", total=len(docs))):
        if textcat is not None and cats:
            _set_soft_cats(gold, soften(cats, temperature, exclusive=textcat[1]), soft_weight, counts)
        if has_ner:
            _set_silver_ents(gold, ents, counts)
        out.add(gold)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output_path)
    counts.update(teacher=str(teacher_path), soft_weight=soft_weight, temperature=temperature, engine=engine)
    return counts


def check_settings(soft_weight: float, temperature: float, engine: str, workers: int) -> None:
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight must be between 0 and 1, not {soft_weight}.")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, not {temperature}.")
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}.")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}.")


def read_docs(input_paths: Sequence[Path], vocab) -> List[Doc]:
    for path in input_paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"Docs to label {path} do not exist.")
    return [doc for path in input_paths for doc in DocBin().from_disk(path).get_docs(vocab)]


Prediction = Tuple[List[Tuple[int, int, str]], Dict[str, float]]


def _local_predictions(teacher: Language, docs: List[Doc], batch_size: int) -> Iterator[Prediction]:
    for predicted in teacher.pipe(copy_docs(teacher.vocab, docs), batch_size=batch_size):
        yield [(e.start_char, e.end_char, e.label_) for e in predicted.ents], dict(predicted.cats)


def _ray_predictions(
    teacher_path: Path,
    docs: List[Doc],
    shards: Path,
    batch_size: int,
    workers: int,
    shard_size: int,
    address: Optional[str],
) -> Iterator[Prediction]:
    """The docs, by their tokens, through `bertprod apply --engine ray`; read back in input order."""
    from ..serving.apply import apply, read_output

    records = shards.with_name(shards.name + ".jsonl")
    _write_records(docs, records)
    apply(
        str(teacher_path),
        records,
        shards,
        engine="ray",
        shard_size=shard_size,
        batch_size=batch_size,
        workers=workers,
        address=address,
    )
    for row in read_output(shards):
        yield [(e["start"], e["end"], e["label"]) for e in row["ents"]], row["cats"]


def _write_records(docs: List[Doc], path: Path) -> None:
    """One JSONL record per doc with its exact tokens. Rewritten only when the docs changed, so a
    rerun of the same job resumes from the shards already written."""
    lines = [
        json.dumps({"text": d.text, "words": [t.text for t in d], "spaces": [bool(t.whitespace_) for t in d]})
        for d in docs
    ]
    content = ("\n".join(lines) + "\n").encode("utf8")
    if path.exists() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def _set_soft_cats(gold: Doc, soft: Dict[str, float], soft_weight: float, counts: Dict) -> None:
    if gold.cats:
        gold.cats = {
            label: soft_weight * v + (1 - soft_weight) * gold.cats.get(label, 0.0) for label, v in soft.items()
        }
        counts["soft_cats_mixed_with_gold"] += 1
    else:
        gold.cats = soft
        counts["soft_cats_teacher_only"] += 1


def _set_silver_ents(gold: Doc, ents: List[Tuple[int, int, str]], counts: Dict) -> None:
    """The teacher's entities where the doc has no gold ones (same tokens: every span aligns)."""
    if gold.has_annotation("ENT_IOB"):
        counts["gold_ner"] += 1
        return
    gold.ents = [gold.char_span(start, end, label=label) for start, end, label in ents]
    counts["silver_ner"] += 1
