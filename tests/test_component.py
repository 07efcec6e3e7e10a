"""The bertprod_transformer component with the torch backend: training, listeners, saving."""

import numpy
import pytest
import spacy

from spacy_bertprod.backends.torch import hf_module

from conftest import TEXTS, build_pipeline, make_examples, train


@pytest.mark.parametrize("encoder", ["bert", "roberta", "albert"])
@pytest.mark.parametrize("textcat", ["textcat", "textcat_multilabel"])
def test_train_ner_and_textcat_listening(encoders, encoder, textcat):
    nlp = build_pipeline(encoders[encoder], textcat=textcat)
    examples = make_examples(nlp, n=24)
    history = train(nlp, examples, steps=6)
    assert set(history[-1]) == {"transformer", "ner", textcat}
    assert all(numpy.isfinite(v) for losses in history for v in losses.values())
    # The transformer really receives gradients from its listeners.
    assert history[-1]["transformer"] > 0
    trf = nlp.get_pipe("transformer")
    assert set(trf.listening_components) == {"ner", textcat}
    for doc in nlp.pipe(TEXTS):
        assert doc._.trf_data.align.lengths.shape[0] == len(doc)
        if doc.cats and textcat == "textcat":
            assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_training_moves_the_encoder_weights(encoders):
    nlp = build_pipeline(encoders["bert"])
    examples = make_examples(nlp, n=16)
    nlp.initialize(lambda: examples)
    module = hf_module(nlp.get_pipe("transformer").encoder)
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    optimizer = nlp.create_optimizer()
    for _ in range(3):
        nlp.update(examples[:8], sgd=optimizer)
    after = module.state_dict()
    changed = [k for k in before if not numpy.allclose(before[k].numpy(), after[k].numpy())]
    assert any("encoder.layer" in k for k in changed)


def test_mixed_precision_on_cpu_trains_in_bfloat16_and_predicts_in_float32(encoders, tmp_path):
    """On CPU, mixed_precision lowers the training matmuls to bfloat16 (thinc's own switch is CUDA
    float16 only); weights, gradients, inference and the saved pipeline stay float32."""
    import torch

    nlp = build_pipeline(encoders["bert"], mixed_precision=True)
    examples = make_examples(nlp, n=16)
    nlp.initialize(lambda: examples)
    module = hf_module(nlp.get_pipe("transformer").encoder)
    seen = []
    module.encoder.layer[0].attention.self.query.register_forward_hook(
        lambda layer, inputs, output: seen.append(output.dtype)
    )
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    optimizer = nlp.create_optimizer()
    losses = {}
    for _ in range(3):
        nlp.update(examples[:8], sgd=optimizer, losses=losses)
    assert set(seen) == {torch.bfloat16}
    assert all(numpy.isfinite(v) and v > 0 for v in losses.values())
    assert all(p.dtype == torch.float32 for p in module.parameters())
    assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    seen.clear()
    predicted = [(doc._.trf_data.hidden.dtype, [e.text for e in doc.ents]) for doc in nlp.pipe(TEXTS)]
    assert set(seen) == {torch.float32}
    assert {dtype for dtype, _ in predicted} == {numpy.dtype("float32")}
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert [[e.text for e in doc.ents] for doc in reloaded.pipe(TEXTS)] == [ents for _, ents in predicted]


def test_save_load_round_trip_torch(trained_bert):
    nlp = spacy.load(trained_bert)
    files = {p.name for p in (trained_bert / "transformer").iterdir()}
    assert {"cfg", "tokenizer.json", "model", "config.json", "model.safetensors"} <= files
    again = spacy.load(trained_bert)
    for a, b in zip(nlp.pipe(TEXTS), again.pipe(TEXTS)):
        numpy.testing.assert_array_equal(a._.trf_data.hidden, b._.trf_data.hidden)
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        assert a.cats == b.cats


def test_to_bytes_round_trip(trained_bert):
    nlp = spacy.load(trained_bert)
    copy = spacy.load(trained_bert)
    trf_bytes = nlp.get_pipe("transformer").to_bytes()
    # Scramble the copy's weights, then restore them from bytes.
    module = hf_module(copy.get_pipe("transformer").encoder)
    for p in module.parameters():
        p.data.zero_()
    copy.get_pipe("transformer").from_bytes(trf_bytes)
    doc_a, doc_b = nlp("Alice flew to Paris"), copy("Alice flew to Paris")
    numpy.testing.assert_allclose(doc_a._.trf_data.hidden, doc_b._.trf_data.hidden, atol=1e-6)


def test_every_token_gets_a_vector_in_overlapping_windows(trained_bert):
    nlp = spacy.load(trained_bert)
    doc = nlp("Frank moved to Madrid and " * 20)  # 100 tokens, windows of 16 every 12
    data = doc._.trf_data
    lengths = data.align.lengths
    words = [i for i, t in enumerate(doc) if not t.is_space]
    assert (lengths[words] > 0).all()
    # Tokens in the overlap of two windows are aligned to wordpieces of both.
    assert lengths[13] >= 2 * 1 and lengths[13] > lengths[1]
