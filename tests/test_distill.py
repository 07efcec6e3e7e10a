"""Distillation: the transfer set, teacher labels, and the NER action-distribution distiller."""

import random

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_bertprod.distill.augment import EmbeddingNeighbours, make_transfer_set, word_replacement_variants
from spacy_bertprod.distill.targets import soften, teacher_label
from spacy_bertprod.streaming import iter_docs

from conftest import make_examples


def _neighbours():
    vocab = {"[PAD]": 0, "[UNK]": 1, "good": 2, "great": 3, "bad": 4, "awful": 5, "##s": 6, "x": 7, "card": 8}
    emb = numpy.zeros((9, 3), dtype="float32")
    emb[2], emb[3] = [1, 0.1, 0], [1, 0.2, 0]
    emb[4], emb[5] = [-1, 0, 0.1], [-1, 0, 0.2]
    emb[8] = [0, 0, 1]
    return EmbeddingNeighbours(emb, vocab, n_neighbours=1)


def test_neighbours_come_from_the_embedding_and_are_whole_words():
    nb = _neighbours()
    assert nb.uncased
    assert nb.neighbours("good") == ["great"]
    assert nb.neighbours("awful") == ["bad"]
    assert nb.key("Good") == "good"
    assert nb.key("x") is None and nb.key("s") is None and nb.key("goods") is None


def test_variants_replace_one_token_for_one_and_keep_everything_else():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Good card, AWFUL day at 5pm @bob")
    variants = word_replacement_variants(doc, _neighbours(), n_variants=5, replace_prob=1.0, rng=random.Random(0))
    assert len(variants) == 1  # with p=1 and one neighbour each, only one distinct variant exists
    (variant,) = variants
    assert [t.text for t in variant] == ["Great", "awful", ",", "BAD", "day", "at", "5", "pm", "@bob"]
    assert [t.whitespace_ for t in variant] == [t.whitespace_ for t in doc]
    assert word_replacement_variants(nlp.make_doc("5 , ?"), _neighbours(), 3, 1.0, random.Random(0)) == []


def test_transfer_set_from_a_real_encoder_is_seeded_and_adds_raw_text(encoders, tmp_path):
    nlp = spacy.blank("en")
    train = tmp_path / "train.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(nlp, n=30)]).to_disk(train)
    raw = tmp_path / "raw.txt"
    raw.write_text("Alice flew to Tokyo\n\nBob works in Paris today\n", encoding="utf8")
    first = make_transfer_set(train, encoders["bert"], tmp_path / "a.spacy", n_variants=4, raw_text=raw, seed=3)
    second = make_transfer_set(train, encoders["bert"], tmp_path / "b.spacy", n_variants=4, raw_text=raw, seed=3)
    assert first == {**second, "output": str(tmp_path / "a.spacy")}
    assert first["raw_texts"] == 2 and first["variants"] > 30
    a = [d.text for d in iter_docs([tmp_path / "a.spacy"], nlp.vocab)]
    b = [d.text for d in iter_docs([tmp_path / "b.spacy"], nlp.vocab)]
    assert a == b and len(a) == first["transfer_docs"]
    originals = {eg.reference.text for eg in make_examples(nlp, n=30)}
    assert not originals & set(a[:-2])
    assert a[-2:] == ["Alice flew to Tokyo", "Bob works in Paris today"]


def test_stop_words_are_kept_when_asked(encoders, tmp_path):
    nlp = spacy.blank("en")
    train = tmp_path / "train.spacy"
    doc = nlp.make_doc("The good card is in my bag and the bank has it now")
    DocBin(docs=[doc]).to_disk(train)
    stop = [t.is_stop for t in doc]
    assert any(stop) and not all(stop)
    kept = make_transfer_set(
        train, encoders["bert"], tmp_path / "kept.spacy", n_variants=6, replace_prob=1.0, replace_stop_words=False
    )
    assert kept["replace_stop_words"] is False and kept["variants"] >= 1
    for variant in iter_docs([tmp_path / "kept.spacy"], nlp.vocab):
        assert [t.text for t, s in zip(variant, stop) if s] == [t.text for t, s in zip(doc, stop) if s]
        assert [t.text for t, s in zip(variant, stop) if not s] != [t.text for t, s in zip(doc, stop) if not s]
    make_transfer_set(train, encoders["bert"], tmp_path / "all.spacy", n_variants=6, replace_prob=1.0)  # the default
    changed = [
        [a.text for a, s in zip(variant, stop) if s] != [t.text for t, s in zip(doc, stop) if s]
        for variant in iter_docs([tmp_path / "all.spacy"], nlp.vocab)
    ]
    assert all(changed)


def test_transfer_set_errors_are_clear(encoders, tmp_path):
    nlp = spacy.blank("en")
    with pytest.raises(FileNotFoundError, match="missing.spacy"):
        make_transfer_set(tmp_path / "missing.spacy", encoders["bert"], tmp_path / "o.spacy")
    train = tmp_path / "train.spacy"
    DocBin(docs=[nlp.make_doc("5 , ?")]).to_disk(train)
    with pytest.raises(ValueError, match="replace_prob"):
        make_transfer_set(train, encoders["bert"], tmp_path / "o.spacy", replace_prob=0)
    with pytest.raises(ValueError, match="would be empty"):
        make_transfer_set(train, encoders["bert"], tmp_path / "o.spacy")


def test_temperature_softens_but_keeps_the_ranking():
    cats = {"a": 0.7, "b": 0.2, "c": 0.1}
    assert soften(cats, 1.0, exclusive=True) == pytest.approx(cats)
    soft = soften(cats, 2.0, exclusive=True)
    assert sum(soft.values()) == pytest.approx(1.0)
    assert soft["a"] > soft["b"] > soft["c"] and soft["a"] < 0.7 and soft["c"] > 0.1
    multi = soften({"a": 0.9, "b": 0.2}, 2.0, exclusive=False)
    assert 0.5 < multi["a"] < 0.9 and 0.2 < multi["b"] < 0.5


def test_teacher_label_keeps_gold_and_labels_the_rest(trained_bert, tmp_path):
    nlp = spacy.blank("en")
    gold = [eg.reference for eg in make_examples(nlp, n=6)]
    DocBin(docs=gold).to_disk(tmp_path / "gold.spacy")
    unlabelled = [nlp.make_doc(t) for t in ("Carol flew to Lisbon", "Dave works in Madrid today")]
    DocBin(docs=unlabelled).to_disk(tmp_path / "transfer.spacy")
    out = tmp_path / "labelled.spacy"
    info = teacher_label(
        trained_bert, [tmp_path / "gold.spacy", tmp_path / "transfer.spacy"], out, soft_weight=0.5, temperature=2.0
    )
    assert info["docs"] == 8 and info["gold_ner"] == 6 and info["silver_ner"] == 2
    assert info["soft_cats_mixed_with_gold"] == 6 and info["soft_cats_teacher_only"] == 2
    docs = list(iter_docs([out], nlp.vocab))
    teacher = spacy.load(trained_bert)
    for before, after in zip(gold, docs[:6]):
        assert [(e.start_char, e.end_char, e.label_) for e in after.ents] == [
            (e.start_char, e.end_char, e.label_) for e in before.ents
        ]
        assert sum(after.cats.values()) == pytest.approx(1.0)
        top_gold = max(before.cats, key=before.cats.get)
        assert after.cats[top_gold] >= 0.5  # half of the weight is the gold label's
    for doc in docs[6:]:
        predicted = teacher(doc.text)
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
            (e.start_char, e.end_char, e.label_) for e in predicted.ents
        ]
        assert doc.cats == pytest.approx(soften(predicted.cats, 2.0, exclusive=True), abs=1e-5)


def _distilling_student(teacher_path, temperature=1.0):
    """The teacher itself, with its ner trained by the action distiller (student == teacher)."""
    ner = {"factory": "bertprod_distill_ner", "teacher": str(teacher_path), "temperature": temperature}
    return spacy.load(teacher_path, config={"components": {"ner": ner}})


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_a_student_equal_to_its_teacher_gets_no_gradient(trained_bert, temperature):
    student = _distilling_student(trained_bert, temperature)
    ner = student.get_pipe("ner")
    assert type(ner).__name__ == "DistillingEntityRecognizer"
    examples = [
        Example(student.make_doc(t), student.make_doc(t))
        for t in ("Alice flew to Paris", "Grace met Bob in Tokyo today")
    ]
    for node in ner.model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                node.set_grad(name, node.ops.alloc(node.get_grad(name).shape))
    losses = student.update(examples, sgd=None, drop=0.0, losses={})
    assert 0 <= losses["ner"] < 0.05  # KL(teacher || student), summed over ~20 states, float noise
    grads = [node.get_grad(name) for node in ner.model.walk() for name in node.param_names if node.has_grad(name)]
    assert grads and max(float(numpy.abs(g).max()) for g in grads) < 1e-4


def test_distillation_moves_a_student_towards_its_teacher(trained_bert, encoders, tmp_path):
    from spacy_bertprod.distill.student import make_student

    make_student(trained_bert, tmp_path / "student-encoder", 1)
    student = spacy.load(
        trained_bert,
        config={
            "components": {
                "ner": {"factory": "bertprod_distill_ner", "teacher": str(trained_bert)},
                "transformer": {"model": {"name": str(tmp_path / "student-encoder")}},
            }
        },
    )
    student.remove_pipe("textcat")
    teacher = spacy.load(trained_bert)
    texts = [eg.reference.text for eg in make_examples(student, n=24, seed=5)]
    examples = [Example(student.make_doc(t), student.make_doc(t)) for t in texts]
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    optimizer = student.initialize(lambda: [Example(teacher(t), teacher(t)) for t in texts])
    history = []
    for step in range(30):
        losses = {}
        student.update(examples[(step * 8) % 24 :][:8], sgd=optimizer, losses=losses, drop=0.0)
        history.append(losses["ner"])
    assert numpy.mean(history[-6:]) < 0.7 * numpy.mean(history[:6])


def test_a_temperature_that_is_not_positive_is_refused(trained_bert):
    with pytest.raises(ValueError, match="temperature must be positive"):
        _distilling_student(trained_bert, temperature=0.0)


def test_student_with_labels_its_teacher_lacks_is_refused(trained_bert):
    student = spacy.load(
        trained_bert, config={"components": {"ner": {"factory": "bertprod_distill_ner", "teacher": str(trained_bert)}}}
    )
    ner = student.get_pipe("ner")
    ner.add_label("PRODUCT")
    with pytest.raises(ValueError, match="actions its teacher does not know"):
        ner.action_map()


def test_compress_writes_training_variants_back_as_plain_components(trained_bert, tmp_path):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    student = _distilling_student(trained_bert)
    student.to_disk(tmp_path / "student")
    compress_pipeline(tmp_path / "student", tmp_path / "onnx", CompressSettings(quantize="fp32"))
    config = spacy.util.load_config(tmp_path / "onnx" / "config.cfg")
    assert config["components"]["ner"]["factory"] == "ner"
    assert "teacher" not in config["components"]["ner"]
    onnx = spacy.load(tmp_path / "onnx")
    teacher = spacy.load(trained_bert)
    for text in ("Alice flew to Paris", "Bob works in Berlin with Carol"):
        assert [e.text for e in onnx(text).ents] == [e.text for e in teacher(text).ents]


def test_cli_augment_and_teacher_label(trained_bert, encoders, tmp_path):
    from spacy_bertprod.cli import bertprod_cli as app

    nlp = spacy.blank("en")
    DocBin(docs=[eg.reference for eg in make_examples(nlp, n=10)]).to_disk(tmp_path / "train.spacy")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "augment",
            str(tmp_path / "train.spacy"),
            str(tmp_path / "transfer.spacy"),
            "--encoder",
            str(trained_bert),
            "-n",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "teacher-label",
            str(trained_bert),
            str(tmp_path / "train.spacy"),
            str(tmp_path / "transfer.spacy"),
            "--output",
            str(tmp_path / "labelled.spacy"),
            "-T",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"silver_ner"' in result.output
    result = runner.invoke(
        app, ["teacher-label", str(trained_bert), str(tmp_path / "nope.spacy"), "--output", str(tmp_path / "x.spacy")]
    )
    assert result.exit_code == 1 and "nope.spacy" in result.output
    result = runner.invoke(
        app,
        [
            "augment",
            str(tmp_path / "train.spacy"),
            str(tmp_path / "t.spacy"),
            "--encoder",
            str(trained_bert),
            "--replace-prob",
            "1.5",
        ],
    )
    assert result.exit_code == 1 and "replace_prob" in result.output


def test_hidden_state_map_is_tinybert_mapping_with_embeddings():
    from spacy_bertprod.distill.layers import hidden_state_map

    assert hidden_state_map(6, 3) == [0, 2, 4, 6]
    assert hidden_state_map(6, 4) == [0, 2, 3, 4, 6]  # make-student copies layers 1, 2, 3, 5
    assert hidden_state_map(2, 2) == [0, 1, 2]


def test_layer_loss_is_zero_on_the_mapped_layers_and_ignores_padding():
    import torch

    from spacy_bertprod.distill.layers import layer_loss

    torch.manual_seed(0)
    teacher = [torch.randn(2, 5, 8) for _ in range(5)]  # embeddings + 4 layers
    student = [teacher[0].clone(), teacher[2].clone(), teacher[4].clone()]  # 2 layers -> teacher 2, 4
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert float(layer_loss(student, teacher, mask, 1.0)) == pytest.approx(0.0)
    student[1][0, 3:] += 100.0  # padding of the first row: not counted
    assert float(layer_loss(student, teacher, mask, 1.0)) == pytest.approx(0.0)
    student[2][1, 0] += 1.0  # one real wordpiece of the top layer, 1.0 off in every dim
    assert float(layer_loss(student, teacher, mask, 2.0)) == pytest.approx(2.0)


def test_attention_loss_is_kl_on_the_mapped_layers_real_queries_only():
    import torch

    from spacy_bertprod.distill.layers import attention_loss

    torch.manual_seed(0)
    teacher = [torch.softmax(torch.randn(2, 4, 5, 5), -1) for _ in range(4)]
    student = [teacher[1].clone(), teacher[3].clone()]  # 2 layers -> teacher layers 1, 3
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert float(attention_loss(student, teacher, mask, 1.0)) == pytest.approx(0.0, abs=1e-6)
    student[0][0, :, 3:] = 1 / 5  # padded query rows of the first doc: not counted
    assert float(attention_loss(student, teacher, mask, 1.0)) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((5,), 1 / 5)
    student[1][1, 2, 0] = uniform  # one real query row of one head, now uniform
    t = teacher[3][1, 2, 0]
    expected = float((t * (t.log() - uniform.log())).sum())
    assert float(attention_loss(student, teacher, mask, 3.0)) == pytest.approx(3 * expected, rel=1e-5)
    pruned = [s[:, :2] for s in student]  # fewer heads: head-averaged maps are compared
    assert float(attention_loss(pruned, teacher, mask, 1.0)) > 0


def _layer_student(trained_bert, folder, attention_weight: float = 0.0, steps: int = 30):
    """A 1-layer student of `trained_bert` trained with layer distillation; its loss history."""
    from thinc.api import fix_random_seed

    from spacy_bertprod.distill.student import make_student

    make_student(trained_bert, folder / "student-encoder", 1)
    model = {"name": str(folder / "student-encoder"), "layer_teacher": str(trained_bert), "layer_weight": 1.0}
    model["layer_attention_weight"] = attention_weight
    student = spacy.load(trained_bert, config={"components": {"transformer": {"model": model}}})
    examples = make_examples(student, n=24, seed=5)
    fix_random_seed(0)
    optimizer = student.initialize(lambda: examples)
    history = []
    for step in range(steps):
        losses = {}
        student.update(examples[(step * 8) % 24 :][:8], sgd=optimizer, losses=losses, drop=0.0)
        history.append(losses["transformer_layers"])
    return student, examples, history


def test_layer_distillation_trains_the_student_towards_the_teachers_layers(trained_bert, tmp_path):
    student, examples, history = _layer_student(trained_bert, tmp_path)
    assert history[0] > 0 and numpy.mean(history[-6:]) < 0.7 * numpy.mean(history[:6])
    # Prediction never needs the teacher, and a plain student reports no layer loss.
    assert student("Alice flew to Paris").has_annotation("ENT_IOB")
    plain = spacy.load(trained_bert)
    losses = plain.update(examples[:4], sgd=plain.resume_training(), losses={})
    assert "transformer_layers" not in losses


def test_attention_distillation_brings_the_students_maps_to_the_teachers(trained_bert, tmp_path):
    """Same seed and steps, with and without the attention loss: with it, the student's attention
    maps end closer (KL) to the teacher's mapped layer on held-out text."""
    import torch

    from spacy_bertprod.backends.torch import hf_module
    from spacy_bertprod.distill.layers import attention_loss, teacher_module
    from spacy_bertprod.transformer_model import encoder_batches, encoder_of, get_tokenizer

    def kl_to_teacher(student):
        trf = student.get_pipe("transformer").model
        docs = [student.make_doc(t) for t in ("Grace visited Tokyo and met Dave", "how do i top up my card")]
        batch = next(encoder_batches(get_tokenizer(trf), [d[:] for d in docs]))
        kwargs = {
            "input_ids": torch.as_tensor(batch.input_ids),
            "attention_mask": torch.as_tensor(batch.attention_mask),
        }
        with torch.no_grad():
            s_maps = hf_module(encoder_of(trf)).eval()(**kwargs, output_attentions=True).attentions
            t_maps = teacher_module(str(trained_bert), torch.device("cpu"))(**kwargs, output_attentions=True).attentions
        return float(attention_loss(s_maps, t_maps, kwargs["attention_mask"], 1.0))

    without, _, _ = _layer_student(trained_bert, tmp_path / "without", 0.0)
    with_maps, _, history = _layer_student(trained_bert, tmp_path / "with", 1.0)
    assert history[0] > 0
    assert kl_to_teacher(with_maps) < 0.8 * kl_to_teacher(without)


def test_a_layer_teacher_that_does_not_fit_is_refused_before_training(trained_bert, encoders, tmp_path):
    def student_with(layer_teacher):
        return spacy.load(
            trained_bert,
            config={
                "components": {
                    "transformer": {"model": {"name": str(encoders["bert"]), "layer_teacher": layer_teacher}}
                }
            },
        )

    examples = make_examples(spacy.blank("en"), n=4)
    with pytest.raises(ValueError, match="needs a student made from this teacher"):
        student_with(str(encoders["roberta"])).initialize(lambda: examples)
    with pytest.raises(FileNotFoundError, match="layer_teacher"):
        student_with(str(tmp_path / "nowhere")).initialize(lambda: examples)


def test_make_student_picks_spread_or_bottom_teacher_layers(trained_bert, tmp_path):
    """'spread' keeps the top layer (TinyBERT), 'bottom' the first ones (an exact prefix of the
    teacher); the student's layer weights are copies of the picked teacher layers."""
    import torch
    from safetensors.torch import load_file

    from spacy_bertprod.distill.student import make_student, pick_layers
    from spacy_bertprod.source import load_teacher

    assert pick_layers(6, 3, "spread") == [1, 3, 5] and pick_layers(6, 3, "bottom") == [0, 1, 2]
    assert pick_layers(6, 4, "spread") == [1, 2, 3, 5] and pick_layers(6, 4, "bottom") == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="Unknown layer pick 'top'"):
        pick_layers(6, 3, "top")
    with pytest.raises(ValueError, match="between 1 and 6"):
        pick_layers(6, 7, "bottom")
    teacher, _ = load_teacher(trained_bert)
    teacher_state = teacher.state_dict()
    key = "encoder.layer.{}.attention.self.query.weight"
    for pick, source in (("spread", 1), ("bottom", 0)):
        info = make_student(trained_bert, tmp_path / pick, 1, pick=pick)
        assert info["layer_map"] == [source] and info["pick"] == pick
        student_state = load_file(str(tmp_path / pick / "model.safetensors"))
        assert torch.equal(student_state[key.format(0)], teacher_state[key.format(source)])
    assert make_student(trained_bert, tmp_path / "explicit", 1, layer_map=[0])["pick"] == "explicit"


def test_make_student_layer_map_sets_depth_and_is_checked_first(trained_bert, tmp_path):
    """An explicit layer map sets the student's depth; a map that names a missing teacher layer or
    disagrees with --layers is refused before anything is written."""
    from spacy_bertprod.distill.student import make_student

    info = make_student(trained_bert, tmp_path / "two", None, layer_map=[0, 1])
    assert info["student_layers"] == 2 and info["layer_map"] == [0, 1]
    with pytest.raises(ValueError, match=r"Teacher layers \[7\] .* numbered 0\.\.1"):
        make_student(trained_bert, tmp_path / "missing", None, layer_map=[0, 7])
    with pytest.raises(ValueError, match="--layers 1 but --layer-map names 2 teacher layers"):
        make_student(trained_bert, tmp_path / "mismatch", 1, layer_map=[0, 1])
    assert not (tmp_path / "missing").exists() and not (tmp_path / "mismatch").exists()
