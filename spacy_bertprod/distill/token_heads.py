"""Distilling spaCy's per-token heads (tagger, morphologizer, trainable_lemmatizer, senter) and the
dependency parser from a teacher pipeline, as `bertprod_distill_ner` does for entities.

A per-token head ends in a softmax over its labels (tags, morphology+POS, edit trees, sentence
starts). Following spaCy v4's `Tagger.distill`, the student learns the cross-entropy to the
teacher's distribution for every token of any text: the gradient on its logits is
`student - teacher` (thinc's Softmax takes it as is). The student starts from the teacher's labels
(for the lemmatizer, its edit trees), so both softmaxes have the same columns; a mismatch is refused
before training. The parser learns the teacher's transition-action distribution (transitions.py).

With `teacher` empty each component is spaCy's own, unchanged, and `compress` writes it back as the
plain factory (source.PLAIN_FACTORIES).
"""

from typing import Callable, Dict, Iterable, Optional

import numpy
from spacy.language import Language
from spacy.pipeline import DependencyParser, EditTreeLemmatizer, Morphologizer, SentenceRecognizer, Tagger
from spacy.training import Example
from thinc.api import set_dropout_rate

from ..errors import InvalidInput
from .teacher import TeacherMixin
from .transitions import TransitionDistillMixin

TEACHER_DEFAULTS = {"teacher": "", "teacher_component": ""}


class TokenDistillMixin(TeacherMixin):
    """For a spaCy per-token softmax head (Tagger and its kin, EditTreeLemmatizer)."""

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None, labels=None):
        if self.teacher_path and labels is None and hasattr(self.teacher_pipe, "label_data"):
            labels = self.teacher_pipe.label_data  # the teacher's columns, in its order
        if isinstance(self, SentenceRecognizer):  # fixed labels
            super().initialize(get_examples, nlp=nlp)
        else:
            super().initialize(get_examples, nlp=nlp, labels=labels)

    def distill(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None
    ):
        """Cross-entropy to the teacher's per-token distribution; reports KL(teacher || student)."""
        losses, docs = self.start_distill(examples, losses)
        if not docs:
            return losses
        teacher = self.teacher_pipe
        if tuple(teacher.labels) != tuple(self.labels):
            raise InvalidInput(
                f"The student's '{self.name}' has other labels than its teacher's '{self.teacher_component}' "
                f"({len(self.labels)} vs {len(teacher.labels)}): initialise the student with the teacher set "
                "(its labels are then the teacher's)."
            )
        targets = [probabilities(teacher.model, t) for t in teacher.model.predict(self.teacher_docs(docs))]
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update(docs)
        d_scores, loss = [], 0.0
        for guess, target in zip(scores, targets):
            guess = self.model.ops.to_numpy(guess)
            ratio = numpy.log(numpy.maximum(target, 1e-12)) - numpy.log(numpy.maximum(guess, 1e-12))
            loss += float((target * ratio).sum())
            d_scores.append(self.model.ops.asarray2f(guess - target))
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses


def probabilities(model, scores) -> numpy.ndarray:
    """A tagger model's predictions as probabilities: spaCy's Tagger.v2 with normalize=false (the
    default) gives logits at inference (thinc's Softmax_v2 skips the softmax when it only needs the
    argmax), softmax rows in training."""
    scores = numpy.asarray(model.ops.to_numpy(scores), dtype="float32")
    if model.has_ref("softmax") and model.get_ref("softmax").attrs.get("softmax_normalize", True):
        return scores
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


class DistillingTagger(TokenDistillMixin, Tagger):
    pass


class DistillingMorphologizer(TokenDistillMixin, Morphologizer):
    pass


class DistillingSentenceRecognizer(TokenDistillMixin, SentenceRecognizer):
    pass


class DistillingEditTreeLemmatizer(TokenDistillMixin, EditTreeLemmatizer):
    pass


class DistillingDependencyParser(TransitionDistillMixin, DependencyParser):
    pass


def _distilling(pipe, teacher: str, teacher_component: str, default_component: str):
    pipe.set_teacher(teacher, teacher_component or default_component)
    if isinstance(pipe, TransitionDistillMixin):
        pipe.set_temperature(1.0)
    return pipe


def _factory(name: str, plain: str):
    """Register `name` with spaCy's `plain` factory's settings plus the teacher's."""
    try:  # spaCy 3.8 registers its own factories when the first Language is made
        from spacy.pipeline.factories import register_factories

        register_factories()
    except ImportError:
        pass
    meta = Language.get_factory_meta(plain)
    return Language.factory(
        name,
        assigns=meta.assigns,
        requires=meta.requires,
        default_config={**meta.default_config, **TEACHER_DEFAULTS},
        default_score_weights=meta.default_score_weights,
    )


@_factory("bertprod_distill_tagger", "tagger")
def make_distill_tagger(nlp, name, model, overwrite, scorer, neg_prefix, label_smoothing, teacher, teacher_component):
    pipe = DistillingTagger(
        nlp.vocab, model, name=name, overwrite=overwrite, scorer=scorer, neg_prefix=neg_prefix,
        label_smoothing=label_smoothing,
    )  # fmt: skip
    return _distilling(pipe, teacher, teacher_component, "tagger")


@_factory("bertprod_distill_morphologizer", "morphologizer")
def make_distill_morphologizer(
    nlp, name, model, overwrite, extend, label_smoothing, scorer, teacher, teacher_component
):
    pipe = DistillingMorphologizer(
        nlp.vocab, model, name, overwrite=overwrite, extend=extend, label_smoothing=label_smoothing, scorer=scorer
    )
    return _distilling(pipe, teacher, teacher_component, "morphologizer")


@_factory("bertprod_distill_senter", "senter")
def make_distill_senter(nlp, name, model, overwrite, scorer, teacher, teacher_component):
    pipe = DistillingSentenceRecognizer(nlp.vocab, model, name, overwrite=overwrite, scorer=scorer)
    return _distilling(pipe, teacher, teacher_component, "senter")


@_factory("bertprod_distill_lemmatizer", "trainable_lemmatizer")
def make_distill_lemmatizer(
    nlp, name, model, backoff, min_tree_freq, overwrite, top_k, scorer, teacher, teacher_component
):
    pipe = DistillingEditTreeLemmatizer(
        nlp.vocab, model, name, backoff=backoff, min_tree_freq=min_tree_freq, overwrite=overwrite, top_k=top_k,
        scorer=scorer,
    )  # fmt: skip
    return _distilling(pipe, teacher, teacher_component, "trainable_lemmatizer")


@_factory("bertprod_distill_parser", "parser")
def make_distill_parser(
    nlp, name, model, moves, update_with_oracle_cut_size, learn_tokens, min_action_freq, scorer, teacher,
    teacher_component,
):  # fmt: skip
    pipe = DistillingDependencyParser(
        nlp.vocab, model, name=name, moves=moves, update_with_oracle_cut_size=update_with_oracle_cut_size,
        learn_tokens=learn_tokens, min_action_freq=min_action_freq, scorer=scorer,
    )  # fmt: skip
    return _distilling(pipe, teacher, teacher_component, "parser")
