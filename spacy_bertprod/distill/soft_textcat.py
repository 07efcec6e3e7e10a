"""`bertprod_soft_textcat` and `bertprod_soft_textcat_multilabel`: spaCy's `textcat` and
`textcat_multilabel`, trainable on soft (teacher) targets.

spaCy's text classifiers refuse cats other than 0/1 (E851), although their loss is well defined
for probabilities: the gradient they pass back is `scores - targets`, and thinc's Softmax/Sigmoid
output layers take that as the gradient of the logits, i.e. cross-entropy to the targets, the
knowledge-distillation loss. These subclasses only relax the check: cats must lie in [0, 1] (and,
for the exclusive one, sum to 1). Model, loss, scoring and serialisation are spaCy's, so
`compress` writes them back as the plain factories.
"""

from typing import Iterable

from spacy.language import Language
from spacy.pipeline.textcat import TextCategorizer, single_label_default_config
from spacy.pipeline.textcat_multilabel import MultiLabel_TextCategorizer, multi_label_default_config
from spacy.training import Example
from thinc.api import Config

from ..errors import InvalidInput

FACTORY = "bertprod_soft_textcat"
MULTILABEL_FACTORY = "bertprod_soft_textcat_multilabel"


@Language.factory(
    FACTORY,
    assigns=["doc.cats"],
    default_config={
        "threshold": 0.0,
        "model": Config().from_str(single_label_default_config)["model"],
        "scorer": {"@scorers": "spacy.textcat_scorer.v2"},
    },
    default_score_weights={"cats_score": 1.0},
)
def make_soft_textcat(nlp: Language, name: str, model, threshold: float, scorer):
    return SoftTargetTextCategorizer(nlp.vocab, model, name, threshold=threshold, scorer=scorer)


@Language.factory(
    MULTILABEL_FACTORY,
    assigns=["doc.cats"],
    default_config={
        "threshold": 0.5,
        "model": Config().from_str(multi_label_default_config)["model"],
        "scorer": {"@scorers": "spacy.textcat_multilabel_scorer.v2"},
    },
    default_score_weights={"cats_score": 1.0},
)
def make_soft_multilabel_textcat(nlp: Language, name: str, model, threshold: float, scorer):
    return SoftTargetMultiLabelTextCategorizer(nlp.vocab, model, name, threshold=threshold, scorer=scorer)


def _check_soft(examples: Iterable[Example], exclusive: bool) -> None:
    for eg in examples:
        values = list(eg.reference.cats.values())
        if any(not 0.0 <= v <= 1.0 for v in values) or (exclusive and values and abs(sum(values) - 1.0) > 1e-3):
            rule = "probabilities in [0, 1] that sum to 1" if exclusive else "probabilities in [0, 1]"
            raise InvalidInput(
                f"Soft textcat targets must be {rule}, got {eg.reference.cats} for {eg.reference.text[:60]!r}."
            )


class SoftTargetTextCategorizer(TextCategorizer):
    def _validate_categories(self, examples: Iterable[Example]) -> None:
        _check_soft(examples, exclusive=True)


class SoftTargetMultiLabelTextCategorizer(MultiLabel_TextCategorizer):
    def _validate_categories(self, examples: Iterable[Example]) -> None:
        _check_soft(examples, exclusive=False)
