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

from typing import Callable, Dict, Iterable, List, Optional

import numpy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.pipeline.ner import default_model_config
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from thinc.api import Config, Model, set_dropout_rate

from ..errors import InvalidInput
from ..source import find_transformer_component
from .hidden import copy_docs

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


class DistillingEntityRecognizer(EntityRecognizer):
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
        if not temperature > 0.0:
            raise InvalidInput(
                f"temperature must be positive (1.0: the teacher's distribution as it is), not {temperature}."
            )
        super().__init__(vocab, model, name, moves, **kwargs)
        self.teacher_path = teacher
        self.temperature = float(temperature)
        self.teacher_component = teacher_component
        self._teacher: Optional[Language] = None
        self._action_map: Optional[numpy.ndarray] = None

    @property
    def teacher(self) -> Language:
        if self._teacher is None:
            import spacy

            self._teacher = spacy.load(self.teacher_path)
            if self.teacher_component not in self._teacher.pipe_names:
                raise InvalidInput(
                    f"The teacher {self.teacher_path} has no component '{self.teacher_component}' "
                    f"(it has {self._teacher.pipe_names}): set teacher_component to its entity recognizer."
                )
        return self._teacher

    def action_map(self) -> numpy.ndarray:
        """For each of the student's actions, the index of the same action in the teacher (made
        again when the student's actions change, e.g. a label added)."""
        if self._action_map is None or len(self._action_map) != self.moves.n_moves:
            teacher_ner = self.teacher.get_pipe(self.teacher_component)
            teacher_moves = {teacher_ner.moves.get_class_name(i): i for i in range(teacher_ner.moves.n_moves)}
            student_moves = [self.moves.get_class_name(i) for i in range(self.moves.n_moves)]
            missing = [m for m in student_moves if m not in teacher_moves and m != "U-"]
            if missing:
                raise InvalidInput(
                    f"The student's entity recognizer has actions its teacher does not know ({missing[:8]}): "
                    "initialise the student on data labelled with the teacher's labels (teacher-label)."
                )
            self._action_map = numpy.asarray([teacher_moves.get(m, -1) for m in student_moves], dtype="int64")
        return self._action_map

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None, labels=None):
        if self.teacher_path and labels is None:
            # The teacher's actions, not those of the first examples: a streamed corpus
            # (StreamingCorpus.v1) initialises on its first 100, which may lack a rare label.
            labels = self.teacher.get_pipe(self.teacher_component).moves.labels
        super().initialize(get_examples, nlp=nlp, labels=labels)
        if self.teacher_path:
            self.action_map()  # fail before training if the label sets differ

    def update(self, examples, *, drop=0.0, sgd=None, losses=None):
        if not self.teacher_path:
            return super().update(examples, drop=drop, sgd=sgd, losses=losses)
        return self.distill(examples, drop=drop, sgd=sgd, losses=losses)

    def distill(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None
    ):
        """Cross-entropy to the teacher's action distribution along the student's own transitions.

        At temperature T both distributions are softmax(scores / T) and the loss is scaled by T**2
        (Hinton et al.), so the gradient's size does not change with T.
        """
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "DistillingEntityRecognizer.distill")
        docs = [eg.predicted for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        teacher_docs = self._teacher_docs(docs)
        teacher_ner = self.teacher.get_pipe(self.teacher_component)
        action_map = self.action_map()
        set_dropout_rate(self.model, drop)
        tutor = teacher_ner.model.predict(teacher_docs)
        student, backprop_tok2vec = self.model.begin_update(docs)
        states = [s for s in self.moves.init_batch(docs) if not s.is_final()]
        names = [self.moves.get_class_name(i) for i in range(self.moves.n_moves)]
        loss = 0.0
        while states:
            teacher_scores = teacher_ner.model.ops.to_numpy(tutor.predict(states))
            scores, backprop = student.begin_update(states)
            valid = numpy.asarray([[self.moves.is_valid(s, n) for n in names] for s in states], dtype=bool)
            valid &= action_map[None, :] >= 0
            T = self.temperature
            target = _masked_softmax(teacher_scores[:, numpy.maximum(action_map, 0)] / T, valid)
            scores_cpu = self.model.ops.to_numpy(scores)  # CPU already unless the head has an upper layer on GPU
            guess = _masked_softmax(scores_cpu / T, valid)
            # Reported loss: T^2 KL(teacher || student), which is 0 when the student matches; the
            # gradient is that of T^2 times the cross-entropy: T (guess - target) on the student's logits.
            log_ratio = numpy.log(numpy.maximum(target, 1e-12)) - numpy.log(numpy.maximum(guess, 1e-12))
            loss += float((target * log_ratio).sum()) * T * T
            d_scores = (T * (guess - target)).astype("float32")
            backprop(d_scores if isinstance(scores, numpy.ndarray) else self.model.ops.asarray2f(d_scores))
            states = self.transition_states(states, scores_cpu)
        backprop_tok2vec(docs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        student.clear_memory()
        tutor.clear_memory()
        return losses

    def _teacher_docs(self, docs: List[Doc]) -> List[Doc]:
        """Copies of the student's docs (same tokens), annotated by the teacher's transformer."""
        copies = copy_docs(self.teacher.vocab, docs)
        _, trf = find_transformer_component(self.teacher, "The teacher pipeline")
        trf.set_annotations(copies, trf.predict(copies))
        return copies


def _masked_softmax(scores: numpy.ndarray, valid: numpy.ndarray) -> numpy.ndarray:
    scores = numpy.where(valid, scores, -numpy.inf)
    top = scores.max(axis=1, keepdims=True)
    top = numpy.where(numpy.isfinite(top), top, 0.0)
    exp = numpy.where(valid, numpy.exp(scores - top), 0.0)
    return exp / numpy.maximum(exp.sum(axis=1, keepdims=True), 1e-30)
