"""`bertprod_distill_ner`: spaCy's `ner`, trained on a teacher's action distribution.

spaCy's NER is a transition system: at each state it scores the next action (B-/I-/L-/U-LABEL,
O). Following spaCy v4's `Parser.distill` (explosion/spaCy, branch v4), the student decodes each
doc with its own greedy choices, the teacher scores the very same states, and the student learns
the cross-entropy to the teacher's softmax over the valid actions. No gold is needed, so any text
(the augmented transfer set, raw text) teaches it, and the student learns the teacher's
uncertainty between actions, not only its final entities.

With `teacher` empty the component is spaCy's `ner`, unchanged (a gold fine-tune after
distillation sources it that way), and `compress` writes it back as a plain `ner`. The teacher is
any saved pipeline whose `ner` has the same labels; it is loaded on first use, so loading a
trained student never needs it.
"""

from typing import Callable, Optional

from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.pipeline.ner import default_model_config
from thinc.api import Config, Model

from .transitions import TransitionDistillMixin

FACTORY = "bertprod_distill_ner"


@Language.factory(
    FACTORY,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "moves": None,
        "update_with_oracle_cut_size": 100,
        "model": Config().from_str(default_model_config)["model"],
        "incorrect_spans_key": None,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "teacher": "",
        "teacher_component": "ner",
        "temperature": 1.0,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_distill_ner(
    nlp: Language,
    name: str,
    model: Model,
    moves,
    update_with_oracle_cut_size: int,
    incorrect_spans_key: Optional[str],
    scorer: Optional[Callable],
    teacher: str,
    teacher_component: str,
    temperature: float,
):
    return DistillingEntityRecognizer(
        nlp.vocab,
        model,
        name=name,
        moves=moves,
        update_with_oracle_cut_size=update_with_oracle_cut_size,
        incorrect_spans_key=incorrect_spans_key,
        scorer=scorer,
        teacher=teacher,
        teacher_component=teacher_component,
        temperature=temperature,
    )


class DistillingEntityRecognizer(TransitionDistillMixin, EntityRecognizer):
    def __init__(
        self,
        vocab,
        model,
        name="ner",
        moves=None,
        *,
        teacher: str = "",
        teacher_component: str = "ner",
        temperature: float = 1.0,
        **kwargs,
    ):
        super().__init__(vocab, model, name, moves, **kwargs)
        self.set_teacher(teacher, teacher_component)
        self.set_temperature(temperature)
