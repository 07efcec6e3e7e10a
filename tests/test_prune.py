"""Structured pruning (`compress --prune-heads/--prune-ffn`): importance comes from the pipeline's own
loss, a head or unit that contributes nothing goes first, measuring changes nothing, and the pruned
ONNX encoder computes exactly what the pruned torch encoder does."""

import numpy
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.prune import choose_heads, measure_importance, prune_encoder
from spacy_bertprod.source import find_transformer

from conftest import TEXTS, make_examples


@pytest.fixture(scope="module")
def labelled(trained_bert, tmp_path_factory):
    nlp = spacy.load(trained_bert)
    path = tmp_path_factory.mktemp("prune") / "dev.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(nlp, n=24, seed=7)]).to_disk(path)
    return path


def _examples(nlp, path):
    from spacy.training import Corpus

    return list(Corpus(str(path))(nlp))


def _silence(module, layer: int, head: int, unit: int):
    """Make one head of `layer` and feed-forward unit `unit` of every layer output exactly zero."""
    import torch

    block = module.encoder.layer[layer]
    size = block.attention.self.attention_head_size
    with torch.no_grad():
        block.attention.self.value.weight[head * size : (head + 1) * size] = 0.0
        block.attention.self.value.bias[head * size : (head + 1) * size] = 0.0
        for other in module.encoder.layer:
            other.output.dense.weight[:, unit] = 0.0


def test_a_head_and_a_unit_that_contribute_nothing_are_pruned_first(trained_bert, labelled):
    nlp = spacy.load(trained_bert)
    source = find_transformer(nlp, "test")
    _silence(source.module, layer=1, head=0, unit=5)
    before = [(d.cats, [e.text for e in d.ents]) for d in nlp.pipe(TEXTS)]
    importance = measure_importance(nlp, source.module, _examples(nlp, labelled))
    assert importance["heads"].shape == (2, 2) and importance["ffn"].shape == (2, 64)
    assert importance["heads"][1, 0] == 0.0 and (numpy.delete(importance["heads"].ravel(), 2) > 0).all()
    assert (importance["ffn"][:, 5] == 0.0).all() and (numpy.delete(importance["ffn"], 5, axis=1) > 0).all()
    # Measuring changed nothing: same predictions, the encoder's own forward and dropout are back.
    assert [(d.cats, [e.text for e in d.ents]) for d in nlp.pipe(TEXTS)] == before
    assert "forward" not in vars(source.module)
    assert all(m.p > 0 for m in source.module.modules() if type(m).__name__ == "Dropout")

    assert choose_heads(importance["heads"], 0.25) == {1: [0]}
    pruned, report = prune_encoder(source.module, importance, heads_fraction=0.25, ffn_fraction=1 / 64)
    assert report["heads_kept_per_layer"] == [2, 1] and report["ffn_units_kept_per_layer"] == 63
    assert pruned.encoder.layer[1].output.dense.weight.shape[1] == 63 and pruned.config.intermediate_size == 63
    assert source.module.encoder.layer[1].attention.self.num_attention_heads == 2  # the original is untouched
    # Removing parts that contributed nothing leaves the encoder's output as it was.
    import torch

    ids = torch.tensor([[2, 40, 41, 42, 3]])
    source.module.eval()  # thinc leaves it in train mode after predicting
    with torch.no_grad():
        expected = source.module(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        got = pruned(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    numpy.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_every_layer_keeps_a_head():
    scores = numpy.array([[0.1, 0.2, 0.3], [5.0, 6.0, 7.0]])
    removed = choose_heads(scores, 0.99)
    assert {layer: len(h) for layer, h in removed.items()} == {0: 2, 1: 2}


def test_compress_prunes_and_the_onnx_encoder_matches_the_pruned_torch_encoder(trained_bert, labelled, tmp_path):
    full = compress_pipeline(trained_bert, tmp_path / "full", CompressSettings(quantize="fp32"))
    report = compress_pipeline(
        trained_bert,
        tmp_path / "pruned",
        CompressSettings(quantize="fp32", prune_heads=0.25, prune_ffn=0.5, prune_data=labelled),
    )
    pruning = report["pruning"]
    assert sorted(pruning["heads_kept_per_layer"]) == [1, 2] and pruning["ffn_units_kept_per_layer"] == 32
    assert pruning["parameters_after"] < pruning["parameters_before"] and pruning["n_examples"] == 24
    assert full["pruning"] is None
    assert report["sizes_bytes"]["onnx_final"] < full["sizes_bytes"]["onnx_final"]
    assert report["fusion_statistics"].get("Attention") == 2  # per-layer head counts read from the graph
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-4  # ONNX == the pruned torch encoder
    nlp = spacy.load(tmp_path / "pruned")
    assert len(list(nlp.pipe(TEXTS))) == len(TEXTS)


def test_pruning_asks_for_labelled_data_and_sane_shares(trained_bert, labelled, tmp_path):
    with pytest.raises(ValueError, match="--prune-data"):
        compress_pipeline(trained_bert, tmp_path / "a", CompressSettings(quantize="fp32", prune_heads=0.5))
    with pytest.raises(FileNotFoundError, match="missing.spacy"):
        compress_pipeline(
            trained_bert,
            tmp_path / "b",
            CompressSettings(quantize="fp32", prune_ffn=0.5, prune_data=tmp_path / "missing.spacy"),
        )
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        compress_pipeline(
            trained_bert, tmp_path / "c", CompressSettings(quantize="fp32", prune_heads=1.0, prune_data=labelled)
        )


def test_a_pruned_student_trains_saves_loads_and_compresses(trained_bert, labelled, tmp_path):
    """make-student --prune-*: the narrower encoder round-trips through HF, the torch backend and compress."""
    from spacy_bertprod.backends.hf_folder import load_pretrained
    from spacy_bertprod.distill.student import make_student

    from conftest import build_pipeline, train

    info = make_student(
        trained_bert, tmp_path / "student", 2, pick="bottom", prune_heads=0.25, prune_ffn=0.5, prune_data=labelled
    )
    assert info["pruning"]["ffn_units_kept_per_layer"] == 32 and info["student_parameters"] < info["teacher_parameters"]
    module, _ = load_pretrained(str(tmp_path / "student"))
    assert module.encoder.layer[0].intermediate.dense.out_features == 32
    heads = [layer.attention.self.num_attention_heads for layer in module.encoder.layer]
    assert heads == info["pruning"]["heads_kept_per_layer"] and sorted(heads) == [1, 2]
    nlp = build_pipeline(tmp_path / "student")
    train(nlp, make_examples(nlp), steps=2)
    nlp.to_disk(tmp_path / "trained")
    reloaded = spacy.load(tmp_path / "trained")  # the stored config carries the per-layer head removals
    assert [d.cats for d in reloaded.pipe(TEXTS)] == [d.cats for d in nlp.pipe(TEXTS)]
    report = compress_pipeline(tmp_path / "trained", tmp_path / "onnx", CompressSettings(quantize="fp32"))
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-4
    with pytest.raises(ValueError, match="--prune-data"):
        make_student(trained_bert, tmp_path / "other", 1, prune_heads=0.5)


def test_a_stock_spacy_transformers_pipeline_can_be_pruned(encoders, labelled, tmp_path):
    """The importance gates ride on spacy-transformers' own forward and backward too."""
    from conftest import build_pipeline, train

    nlp = build_pipeline(encoders["bert"], stock=True)
    train(nlp, make_examples(nlp), steps=4)
    nlp.to_disk(tmp_path / "stock")
    report = compress_pipeline(
        tmp_path / "stock",
        tmp_path / "pruned",
        CompressSettings(quantize="int8", prune_ffn=0.25, prune_heads=0.25, prune_data=labelled),
    )
    assert report["transformer"]["source"] == "spacy-transformers"
    assert report["pruning"]["ffn_units_kept_per_layer"] == 48 and sum(report["pruning"]["heads_kept_per_layer"]) == 3
    assert len(list(spacy.load(tmp_path / "pruned").pipe(TEXTS))) == len(TEXTS)


def test_pruning_names_what_it_supports(encoders):
    from spacy_bertprod.backends.hf_folder import load_pretrained
    from spacy_bertprod.compress.prune import feed_forward_pairs

    albert, _ = load_pretrained(str(encoders["albert"]))  # one shared layer group: no per-layer heads/units
    with pytest.raises(ValueError, match="BERT-style"):
        feed_forward_pairs(albert)
    roberta, _ = load_pretrained(str(encoders["roberta"]))
    assert len(feed_forward_pairs(roberta)) == roberta.config.num_hidden_layers
