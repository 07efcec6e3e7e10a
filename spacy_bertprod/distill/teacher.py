"""The teacher a distilling head learns from: a saved pipeline, loaded on first use (so loading a
trained student never needs it), and copies of the student's docs annotated by its transformer."""

from typing import List, Optional

from spacy.language import Language
from spacy.tokens import Doc

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

    def teacher_docs(self, docs: List[Doc]) -> List[Doc]:
        """Copies of the student's docs (same tokens), annotated by the teacher's transformer."""
        copies = copy_docs(self.teacher.vocab, docs)
        _, trf = find_transformer_component(self.teacher, "The teacher pipeline")
        trf.set_annotations(copies, trf.predict(copies))
        return copies
