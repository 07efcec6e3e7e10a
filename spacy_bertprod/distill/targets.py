"""Teacher-made training targets: soft textcat scores and silver entities.

Soft targets: each doc's cats become `soft_weight * teacher + (1 - soft_weight) * gold`; spaCy's
textcat loss is squared error on these values, so a student trained on them learns the teacher's
full distribution over labels, not only the argmax. Docs without gold entities get the teacher's
entities (silver), so unlabelled text can be added to a student's training data.
"""
from pathlib import Path
from typing import Dict

import spacy
from spacy.tokens import Doc, DocBin


def teacher_label(teacher_path: Path, input_path: Path, output_path: Path, soft_weight: float = 0.5, batch_size: int = 64) -> Dict:
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight must be between 0 and 1, not {soft_weight}.")
    teacher = spacy.load(teacher_path)
    docs = list(DocBin().from_disk(input_path).get_docs(teacher.vocab))
    inputs = [Doc(teacher.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in docs]
    n_soft = n_silver = 0
    out = DocBin(store_user_data=False)
    for gold, predicted in zip(docs, teacher.pipe(inputs, batch_size=batch_size)):
        if predicted.cats:
            gold_cats = gold.cats or {}
            gold.cats = {
                label: soft_weight * score + (1 - soft_weight) * gold_cats.get(label, score)
                for label, score in predicted.cats.items()
            }
            n_soft += 1
        if "ner" in teacher.pipe_names and not gold.has_annotation("ENT_IOB"):
            gold.ents = [gold.char_span(e.start_char, e.end_char, label=e.label_) for e in predicted.ents]
            n_silver += 1
        out.add(gold)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output_path)
    return {"docs": len(docs), "soft_cats": n_soft, "silver_ner": n_silver}
