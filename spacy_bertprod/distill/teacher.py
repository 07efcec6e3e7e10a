"""The teacher a distilling head learns from: a saved pipeline, loaded on first use (so loading a
trained student never needs it), and copies of the student's docs annotated by its transformer."""

from typing import Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples

from ..errors import InvalidInput
from ..source import find_transformer_component
from .hidden import copy_docs


class TeacherMixin:
    """For a spaCy head subclass: `teacher` (a pipeline path; empty: not distilling) and the name of
    the teacher's component of the same kind."""

    def set_teacher(self, teacher: str, teacher_component: str) -> None:
        self.teacher_path = teacher
        self.teacher_component = teacher_component
        self._teacher: Optional[Language] = None

    @property
    def teacher(self) -> Language:
        if self._teacher is None:
            import spacy

            self._teacher = spacy.load(self.teacher_path)
            if self.teacher_component not in self._teacher.pipe_names:
                raise InvalidInput(
                    f"The teacher {self.teacher_path} has no component '{self.teacher_component}' "
                    f"(it has {self._teacher.pipe_names}): set teacher_component to the one '{self.name}' learns from."
                )
        return self._teacher

    @property
    def teacher_pipe(self):
        return self.teacher.get_pipe(self.teacher_component)

    def update(self, examples, *, drop=0.0, sgd=None, losses=None):
        """Learn the teacher (`distill`) when one is set; spaCy's own update from gold otherwise."""
        if not self.teacher_path:
            return super().update(examples, drop=drop, sgd=sgd, losses=losses)
        return self.distill(examples, drop=drop, sgd=sgd, losses=losses)

    def start_distill(self, examples: Iterable[Example], losses: Optional[Dict[str, float]]) -> Tuple[Dict, List[Doc]]:
        """(losses with this head's entry, the student's docs; none when no doc has a token)."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.distill")
        docs = [eg.predicted for eg in examples]
        return losses, docs if any(len(doc) for doc in docs) else []

    def teacher_docs(self, docs: List[Doc]) -> List[Doc]:
        """Copies of the student's docs (same tokens), annotated by the teacher's transformer."""
        copies = copy_docs(self.teacher.vocab, docs)
        _, trf = find_transformer_component(self.teacher, "The teacher pipeline")
        trf.set_annotations(copies, trf.predict(copies))
        return copies
