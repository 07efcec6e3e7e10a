"""`bertprod_soft_textcat`: spaCy's exclusive `textcat`, trainable on soft (teacher) targets.

spaCy's textcat refuses cats other than 0/1 (E851), although its loss (squared error on the
scores) is well defined for probabilities. This subclass only relaxes that check: each doc's
cats must be in [0, 1] and sum to 1. Model, loss, scoring and serialisation are textcat's, so
`compress` writes it back as a plain `textcat`.
"""
from typing import Iterable

from spacy.language import Language
from spacy.pipeline.textcat import TextCategorizer, single_label_default_config
from spacy.training import Example
from thinc.api import Config

FACTORY = "bertprod_soft_textcat"


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


class SoftTargetTextCategorizer(TextCategorizer):
    def _validate_categories(self, examples: Iterable[Example]) -> None:
        for eg in examples:
            values = list(eg.reference.cats.values())
            if any(not 0.0 <= v <= 1.0 for v in values) or (values and abs(sum(values) - 1.0) > 1e-3):
                raise ValueError(
                    f"Soft textcat targets must be probabilities in [0, 1] that sum to 1, got {eg.reference.cats} "
                    f"for {eg.reference.text[:60]!r}."
                )
