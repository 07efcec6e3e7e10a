"""Distilling spaCy's transition-based heads (ner, parser) from a teacher's action distribution.

spaCy's NER and dependency parser are transition systems: at each state they score the next action
(B-/I-/L-/U-LABEL, O; shift, reduce, left/right arcs with a label). Following spaCy v4's
`Parser.distill` (explosion/spaCy, branch v4), the student decodes each doc with its own greedy
choices, the teacher scores the very same states, and the student learns the cross-entropy to the
teacher's softmax over the valid actions. No gold is needed, so any text (the augmented transfer
set, raw text) teaches it, and the student learns the teacher's uncertainty between actions, not
only its final analysis.
"""

from typing import Callable, Dict, Iterable, Optional

import numpy
from spacy.training import Example
from thinc.api import set_dropout_rate

from ..errors import InvalidInput
from .teacher import TeacherMixin


class TransitionDistillMixin(TeacherMixin):
    """For a spaCy `Parser` subclass (EntityRecognizer, DependencyParser)."""

    def set_temperature(self, temperature: float) -> None:
        if not temperature > 0.0:
            raise InvalidInput(
                f"temperature must be positive (1.0: the teacher's distribution as it is), not {temperature}."
            )
        self.temperature = float(temperature)
        self.teacher_actions: Optional[numpy.ndarray] = None

    def action_map(self) -> numpy.ndarray:
        """For each of the student's actions, the index of the same action in the teacher (made
        again when the student's actions change, e.g. a label added)."""
        if self.teacher_actions is None or len(self.teacher_actions) != self.moves.n_moves:
            teacher_moves = self.teacher_pipe.moves
            by_name = {teacher_moves.get_class_name(i): i for i in range(teacher_moves.n_moves)}
            student_moves = [self.moves.get_class_name(i) for i in range(self.moves.n_moves)]
            missing = [m for m in student_moves if m not in by_name and m != "U-"]
            if missing:
                raise InvalidInput(
                    f"The student's '{self.name}' has actions its teacher does not know ({missing[:8]}): "
                    "initialise the student on data labelled with the teacher's labels (teacher-label)."
                )
            self.teacher_actions = numpy.asarray([by_name.get(m, -1) for m in student_moves], dtype="int64")
        return self.teacher_actions

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None, labels=None):
        if self.teacher_path and labels is None:
            # The teacher's actions, not those of the first examples: a streamed corpus
            # (StreamingCorpus.v1) initialises on its first 100, which may lack a rare label.
            labels = self.teacher_pipe.moves.labels
        super().initialize(get_examples, nlp=nlp, labels=labels)
        if self.teacher_path:
            self.action_map()  # fail before training if the label sets differ

    def distill(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None
    ):
        """Cross-entropy to the teacher's action distribution along the student's own transitions.

        At temperature T both distributions are softmax(scores / T) and the loss is scaled by T**2
        (Hinton et al.), so the gradient's size does not change with T.
        """
        losses, docs = self.start_distill(examples, losses)
        if not docs:
            return losses
        teacher = self.teacher_pipe
        tutor = teacher.model.predict(self.teacher_docs(docs))
        set_dropout_rate(self.model, drop)
        student, backprop_tok2vec = self.model.begin_update(docs)
        states = [s for s in self.moves.init_batch(docs) if not s.is_final()]
        loss = 0.0
        while states:
            teacher_scores = teacher.model.ops.to_numpy(tutor.predict(states))
            scores, backprop = student.begin_update(states)
            scores_cpu = self.model.ops.to_numpy(scores)  # CPU already unless the head has an upper layer on GPU
            step_loss, d_scores = self._action_loss(states, teacher_scores, scores_cpu)
            loss += step_loss
            backprop(d_scores if isinstance(scores, numpy.ndarray) else self.model.ops.asarray2f(d_scores))
            states = self.transition_states(states, scores_cpu)
        backprop_tok2vec(docs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        student.clear_memory()
        tutor.clear_memory()
        return losses

    def _action_loss(self, states, teacher_scores: numpy.ndarray, scores: numpy.ndarray):
        """T^2 KL(teacher || student) over the valid actions (0 when the student matches), and its
        gradient on the student's logits: T (guess - target)."""
        action_map = self.action_map()
        names = [self.moves.get_class_name(i) for i in range(self.moves.n_moves)]
        valid = numpy.asarray([[self.moves.is_valid(s, n) for n in names] for s in states], dtype=bool)
        valid &= action_map[None, :] >= 0
        T = self.temperature
        target = masked_softmax(teacher_scores[:, numpy.maximum(action_map, 0)] / T, valid)
        guess = masked_softmax(scores / T, valid)
        log_ratio = numpy.log(numpy.maximum(target, 1e-12)) - numpy.log(numpy.maximum(guess, 1e-12))
        return float((target * log_ratio).sum()) * T * T, (T * (guess - target)).astype("float32")


def masked_softmax(scores: numpy.ndarray, valid: numpy.ndarray) -> numpy.ndarray:
    scores = numpy.where(valid, scores, -numpy.inf)
    top = scores.max(axis=1, keepdims=True)
    top = numpy.where(numpy.isfinite(top), top, 0.0)
    exp = numpy.where(valid, numpy.exp(scores - top), 0.0)
    return exp / numpy.maximum(exp.sum(axis=1, keepdims=True), 1e-30)
