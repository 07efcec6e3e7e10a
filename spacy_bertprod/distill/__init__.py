"""Distillation: smaller students initialised from a teacher, trained with the teacher's knowledge."""

# Training-time variants of spaCy's heads -> the plain factory `compress` writes back, and the
# config keys only the variant has. Same model and weights; only how they are trained differs.
PLAIN_FACTORIES = {
    "bertprod_soft_textcat": ("textcat", ()),
    "bertprod_soft_textcat_multilabel": ("textcat_multilabel", ()),
    "bertprod_distill_ner": ("ner", ("teacher", "teacher_component")),
}
