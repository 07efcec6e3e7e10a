"""Distilling every head of a multi-task pipeline: tagger, morphologizer, trainable_lemmatizer, senter
and parser (and ner) learn a teacher's distributions on text without gold.

The teacher is a bertprod pipeline trained on UD English EWT sentences; the student is the same
shape with a fresh encoder, its heads the distilling factories pointing at the teacher. Trained on
raw text only, the student's analyses move towards the teacher's; its labels are the teacher's
(edit trees included); label sets that differ are refused before training; and compress writes the
heads back as spaCy's own factories.
"""

import random
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.training.converters import conllu_to_docs

from spacy_bertprod.errors import InvalidInput
from spacy_bertprod.predictions import layer_agreement

from conftest import listener_block

REPO = Path(__file__).resolve().parents[1]
EWT = REPO.parent / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-train.conllu"
HEADS = {
    "tagger": "bertprod_distill_tagger",
    "morphologizer": "bertprod_distill_morphologizer",
    "trainable_lemmatizer": "bertprod_distill_lemmatizer",
    "parser": "bertprod_distill_parser",
}


def ewt_docs(nlp, n: int, skip: int = 0):
    text = EWT.read_text(encoding="utf8")
    docs = list(conllu_to_docs(text, n_sents=1, no_print=True))[skip : skip + n]
    return list(DocBin(docs=docs).get_docs(nlp.vocab))


def pipeline(encoder: Path, distil_from: str = ""):
    nlp = spacy.blank("en")
    trf = {
        "model": {
            "@architectures": "spacy_bertprod.TorchTransformer.v2",
            "name": str(encoder),
            "get_spans": {"@misc": "spacy_bertprod.strided_spans.v1", "window": 32, "stride": 24},
        }
    }
    nlp.add_pipe("bertprod_transformer", name="transformer", config=trf)
    tok2vec = listener_block("spacy_bertprod.TransformerListener.v1")
    for name, distilling in HEADS.items():
        factory = distilling if distil_from else name
        config = {"model": {"tok2vec": tok2vec}}
        if name == "parser":
            config["model"]["hidden_width"] = 32
        if distil_from:
            config.update(teacher=distil_from, teacher_component=name)
        if name == "trainable_lemmatizer":
            config["min_tree_freq"] = 1
        nlp.add_pipe(factory, name=name, config=config)
    return nlp


@pytest.fixture(scope="module")
def teacher(encoders, tmp_path_factory):
    nlp = pipeline(encoders["bert"])
    gold = [Example(nlp.make_doc(d.text), d) for d in ewt_docs(nlp, 120)]
    optimizer = nlp.initialize(lambda: gold)
    rng = random.Random(0)
    for _ in range(40):
        nlp.update(rng.sample(gold, 8), sgd=optimizer, drop=0.1)
    path = tmp_path_factory.mktemp("teacher") / "teacher"
    nlp.to_disk(path)
    return path


@pytest.mark.slow
def test_every_head_moves_towards_its_teacher(encoders, teacher):
    teacher_nlp = spacy.load(teacher)
    student = pipeline(encoders["bert"], distil_from=str(teacher))
    raw = [d.text for d in ewt_docs(student, 120, skip=500)]
    examples = [Example(student.make_doc(t), student.make_doc(t)) for t in raw]
    optimizer = student.initialize(lambda: examples[:20])
    for name in HEADS:  # the teacher's columns (edit trees included)
        assert tuple(student.get_pipe(name).labels) == tuple(teacher_nlp.get_pipe(name).labels), name
    check = [d.text for d in ewt_docs(student, 60, skip=900)]
    before = layer_agreement(list(teacher_nlp.pipe(check)), list(student.pipe(check)), teacher_nlp.pipe_names)
    rng = random.Random(0)
    losses = {}
    for _ in range(60):
        student.update(rng.sample(examples, 8), sgd=optimizer, drop=0.1, losses=losses)
    after = layer_agreement(list(teacher_nlp.pipe(check)), list(student.pipe(check)), teacher_nlp.pipe_names)
    print({k: (round(before[k], 3), round(after[k], 3)) for k in after if k.endswith("_tokens")})
    for key in ("tags_identical_tokens", "pos_identical_tokens", "lemmas_identical_tokens", "deps_identical_tokens"):
        assert after[key] > before[key] + 0.05 or after[key] > 0.95, (key, before[key], after[key])
    assert all(losses[name] > 0 for name in HEADS), losses


def test_a_student_with_other_labels_is_refused(encoders, teacher, tmp_path):
    config = pipeline(encoders["bert"], distil_from=str(teacher)).config.copy()
    config["initialize"]["components"]["tagger"] = {"labels": ["NN", "NOT-A-TEACHER-TAG"]}  # not the teacher's
    student = spacy.util.load_model_from_config(config, auto_fill=True)
    texts = ["Alice flew to Paris.", "Bob works in Berlin."]
    examples = [Example(student.make_doc(t), student.make_doc(t)) for t in texts]
    optimizer = student.initialize(lambda: examples)
    with pytest.raises(InvalidInput, match="other labels than its teacher"):
        student.update(examples, sgd=optimizer)


def test_compress_writes_the_plain_factories(encoders, teacher, tmp_path):
    from spacy_bertprod.source import to_plain_components

    student = pipeline(encoders["bert"], distil_from=str(teacher))
    components = dict(student.config["components"])
    to_plain_components(components)
    for name in HEADS:
        assert components[name]["factory"] == name
        assert "teacher" not in components[name]


def test_a_split_folder_scores_the_treebank_as_its_file_alone(teacher, tmp_path):
    """spaCy's score_deps keeps the positions of tree-less docs as missing for the docs scored after
    them: the treebank file sorts first in a split folder, so the folder's UAS is the treebank's."""
    from spacy.training import Corpus

    from spacy_bertprod.corpora.treebank import NER_FILE, TREEBANK_FILE

    nlp = spacy.load(teacher)
    DocBin(docs=ewt_docs(nlp, 40, skip=300)).to_disk(tmp_path / TREEBANK_FILE)
    plain = [nlp.make_doc(f"Alice met Bob number {i} in Paris and they talked for a long while") for i in range(40)]
    DocBin(docs=plain).to_disk(tmp_path / NER_FILE)
    alone = nlp.evaluate(list(Corpus(tmp_path / TREEBANK_FILE)(nlp)))
    folder = nlp.evaluate(list(Corpus(tmp_path)(nlp)))
    assert folder["dep_uas"] == pytest.approx(alone["dep_uas"]) and folder["tag_acc"] == pytest.approx(alone["tag_acc"])
