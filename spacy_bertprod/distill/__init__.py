"""Distillation: smaller students initialised from a teacher, trained with the teacher's knowledge."""

# Training-time variants of spaCy's heads -> the plain factory `compress` writes back, and the
# config keys only the variant has. Same model and weights; only how they are trained differs.
PLAIN_FACTORIES = {
    "bertprod_soft_textcat": ("textcat", ()),
    "bertprod_soft_textcat_multilabel": ("textcat_multilabel", ()),
    "bertprod_distill_ner": ("ner", ("teacher", "teacher_component", "temperature")),
}


def to_plain_components(components: dict) -> None:
    """Rewrite a config's [components] in place: training variants -> spaCy's own factories."""
    for block in components.values():
        if block.get("factory") in PLAIN_FACTORIES:
            block["factory"], training_only = PLAIN_FACTORIES[block["factory"]]
            for key in training_only:
                block.pop(key, None)
