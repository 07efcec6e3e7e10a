"""Teacher-made training targets, computed once and stored: soft textcat scores and silver entities.

Textcat: a doc's cats become the teacher's probabilities at a temperature T (exclusive labels:
p_i^(1/T) renormalised, i.e. softmax(logits / T); multi-label: sigmoid(logit / T) per label).
Docs with gold cats get `soft_weight * teacher + (1 - soft_weight) * gold`; docs without (the
transfer set) get the teacher's alone. spaCy's textcat gradient is `scores - targets` on logits,
so training on these is cross-entropy to the teacher (Hinton et al.'s soft targets).

NER: docs without gold entities (the transfer set) get the teacher's entities (silver). Gold
entities are never overwritten.
"""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def teacher_label(
    teacher_path: Path,
    input_paths: List[Path],
    output_path: Path,
    soft_weight: float = 0.5,
    temperature: float = 1.0,
    batch_size: int = 64,
) -> Dict:
    """Label every doc of the input .spacy files with the teacher and write one .spacy file."""
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight must be between 0 and 1, not {soft_weight}.")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, not {temperature}.")
    teacher = spacy.load(teacher_path)
    textcat = textcat_kind(teacher)
    has_ner = any(isinstance(proc, EntityRecognizer) for _, proc in teacher.pipeline)
    if textcat is None and not has_ner:
        raise ValueError(
            f"The teacher {teacher_path} has neither a text classifier nor an entity recognizer: {teacher.pipe_names}."
        )
    docs: List[Doc] = []
    for path in input_paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"Docs to label {path} do not exist.")
        docs.extend(DocBin().from_disk(path).get_docs(teacher.vocab))
    inputs = copy_docs(teacher.vocab, docs)
    counts = {
        "docs": len(docs),
        "soft_cats_mixed_with_gold": 0,
        "soft_cats_teacher_only": 0,
        "silver_ner": 0,
        "gold_ner": 0,
    }
    out = DocBin(store_user_data=False)
    predictions = teacher.pipe(inputs, batch_size=batch_size)
    for gold, predicted in zip(docs, progress(predictions, desc="teacher-label", total=len(docs))):
        if textcat is not None and predicted.cats:
            soft = soften(predicted.cats, temperature, exclusive=textcat[1])
            if gold.cats:
                gold.cats = {
                    label: soft_weight * v + (1 - soft_weight) * gold.cats.get(label, 0.0) for label, v in soft.items()
                }
                counts["soft_cats_mixed_with_gold"] += 1
            else:
                gold.cats = soft
                counts["soft_cats_teacher_only"] += 1
        if has_ner:
            if gold.has_annotation("ENT_IOB"):
                counts["gold_ner"] += 1
            else:
                gold.ents = [gold.char_span(e.start_char, e.end_char, label=e.label_) for e in predicted.ents]
                counts["silver_ner"] += 1
        out.add(gold)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output_path)
    counts.update(teacher=str(teacher_path), soft_weight=soft_weight, temperature=temperature)
    return counts
