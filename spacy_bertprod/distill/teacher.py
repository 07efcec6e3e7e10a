"""The teacher a distilling head learns from: a saved pipeline, loaded on first use (so loading a
trained student never needs it), and copies of the student's docs annotated by its transformer."""

from typing import Dict, Iterable, List, Optional, Tuple

from spacy.attrs import ORTH, SPACY
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples

from ..errors import InvalidInput
from ..source import find_transformer_component
from .hidden import copy_docs

# Every head of a student learns from the same teacher: one copy of it in memory, and its transformer
# run once per training batch (the last batch's output, per teacher), not once per head.
_LOADED: Dict[str, Language] = {}
_LAST_BATCH: Dict[str, Tuple[Tuple[bytes, ...], object]] = {}


def load_teacher(path: str) -> Language:
    if path not in _LOADED:
        import spacy

        _LOADED[path] = spacy.load(path)
    return _LOADED[path]


def batch_key(docs: List[Doc]) -> Tuple[bytes, ...]:
    """The words and spaces of a batch: what the teacher's transformer output depends on."""
    return tuple(doc.to_array([ORTH, SPACY]).tobytes() for doc in docs)


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
            self._teacher = load_teacher(self.teacher_path)
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
        key, last = batch_key(docs), _LAST_BATCH.get(self.teacher_path)
        if last is None or last[0] != key:
            last = _LAST_BATCH[self.teacher_path] = (key, trf.predict(copies))
        trf.set_annotations(copies, last[1])
        return copies
