"""`bertprod_hidden_distiller`: a training-only component that pulls the student's token vectors
towards a teacher's (mean squared error), through the same listener the heads use.

It sits after the student's transformer in the training config; its gradient flows into the
student encoder next to the heads' gradients. At prediction time it does nothing, and
`compress` drops it. The teacher is any saved pipeline with a bertprod or spacy-transformers
transformer (a compressed fp32 ONNX teacher is the fastest choice) and is loaded lazily, so
loading a trained student never needs the teacher.
"""

from typing import Callable, Dict, Iterable, List, Optional

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Model

from ..data import mean_token_vectors
from ..errors import InvalidInput
from ..source import find_transformer_component

DEFAULT_MODEL = {
    "@architectures": "spacy_bertprod.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
    "upstream": "*",
}


@Language.factory(
    "bertprod_hidden_distiller",
    default_config={"model": DEFAULT_MODEL, "teacher": "", "weight": 1.0},
)
def make_hidden_distiller(nlp: Language, name: str, model: Model, teacher: str, weight: float):
    return HiddenStateDistiller(nlp.vocab, model, name=name, teacher=teacher, weight=weight)


def copy_docs(vocab: Vocab, docs: List[Doc]) -> List[Doc]:
    """Unannotated copies with exactly the same tokens, in another pipeline's vocab."""
    return [Doc(vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in docs]


def teacher_token_vectors(teacher_nlp: Language, docs: List[Doc]) -> List[numpy.ndarray]:
    """Mean of the teacher's wordpiece vectors per token, on exactly the student's tokens."""
    _, trf = find_transformer_component(teacher_nlp, "The teacher pipeline")
    copies = copy_docs(teacher_nlp.vocab, docs)
    outputs = trf.predict(copies)
    if hasattr(outputs, "doc_data"):  # spacy-transformers FullTransformerBatch
        outputs = outputs.doc_data
    vectors = []
    for doc, data in zip(docs, outputs):
        hidden = getattr(data, "hidden", None)
        if hidden is None:  # spacy-transformers TransformerData
            hidden = data.model_output.last_hidden_state.reshape(-1, data.width)
        vectors.append(mean_token_vectors(hidden, data.align.lengths, data.align.dataXd, len(doc)))
    return vectors


class HiddenStateDistiller(TrainablePipe):
    """Hidden-state (token vector) distillation loss as a pipeline component."""

    def __init__(self, vocab: Vocab, model: Model, name: str, *, teacher: str, weight: float):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg = {"teacher": teacher, "weight": weight}
        self._teacher: Optional[Language] = None

    @property
    def teacher(self) -> Language:
        if self._teacher is None:
            import spacy

            if not self.cfg["teacher"]:
                raise InvalidInput(f"Set [components.{self.name}.teacher] to the teacher pipeline's folder.")
            self._teacher = spacy.load(self.cfg["teacher"])
        return self._teacher

    def __call__(self, doc: Doc) -> Doc:
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128):
        yield from stream

    def predict(self, docs):
        return None

    def set_annotations(self, docs, scores) -> None:
        pass

    def update(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None
    ):
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "HiddenStateDistiller.update")
        docs = [eg.predicted for eg in examples]
        student, backprop = self.model.begin_update(docs)
        target = teacher_token_vectors(self.teacher, docs)
        n_tokens = max(sum(len(d) for d in docs), 1)
        gradients, loss = [], 0.0
        for s, t in zip(student, target):
            s = self.model.ops.to_numpy(s)
            if s.shape != t.shape:
                raise InvalidInput(
                    f"Student token vectors have shape {s.shape} but the teacher's have {t.shape}: "
                    "hidden-state distillation needs a student as wide as its teacher."
                )
            diff = (s - t) / n_tokens
            loss += float((diff * (s - t)).sum())
            gradients.append(self.model.ops.asarray2f(2 * self.cfg["weight"] * diff))
        backprop(gradients)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += self.cfg["weight"] * loss
        return losses

    def get_loss(self, examples, scores):
        return 0.0, None

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        self.teacher  # fail early if the teacher cannot be loaded

    def to_disk(self, path, *, exclude=tuple()):
        import srsly
        from spacy import util

        path = util.ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)

    def from_disk(self, path, *, exclude=tuple()):
        import srsly
        from spacy import util

        self.cfg.update(srsly.read_json(util.ensure_path(path) / "cfg"))
        return self

    def to_bytes(self, *, exclude=tuple()):
        import srsly

        return srsly.msgpack_dumps(self.cfg)

    def from_bytes(self, data, *, exclude=tuple()):
        import srsly

        self.cfg.update(srsly.msgpack_loads(data))
        return self
