"""Word-vector elimination (PoWER-BERT): fewer vectors per layer, per doc, the same in any batch."""

import copy
import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from transformers import AutoModel

from spacy_bertprod.backends.torch import hf_module
from spacy_bertprod.compress.export import export_onnx
from spacy_bertprod.families import FAMILIES
from spacy_bertprod.word_elimination import (
    ELIMINATING_FAMILIES,
    eliminate_word_vectors,
    parse_retention,
    retention_of,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from tiny_encoder import build_family_encoder  # noqa: E402

from conftest import build_pipeline, make_examples, train


def _batch(vocab_size: int, lengths=(11, 7, 4, 9), seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (len(lengths), max(lengths)), generator=generator)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids, mask


def _vectors_per_layer(module, **inputs) -> list:
    """The sequence length each layer ran on (a hook on every layer)."""
    seen = []
    hooks = [
        layer.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
        for layer in module.encoder.layer
    ]
    with torch.no_grad():
        module(**inputs)
    for hook in hooks:
        hook.remove()
    return seen


def test_schedules_are_checked_with_a_clear_message():
    assert parse_retention("1, 0.6,0.3", 3) == [1.0, 0.6, 0.3]
    assert parse_retention("", 3) == [] and parse_retention([1, 1], 2) == [1.0, 1.0]
    for bad, message in (
        ("1,0.5", "has 3 layers"),
        ("0.9,0.5,0.3", r"layer 1 sees all"),
        ("1,0.5,0", r"in \(0, 1\]"),
        ("1,0.3,0.5", "cannot come back"),
        ("1,half,0.2", "not a comma-separated list"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_retention(bad, 3)


@pytest.mark.parametrize("family", ELIMINATING_FAMILIES)
def test_each_doc_keeps_its_share_and_gets_the_same_vectors_alone_batched_and_in_onnx(family, tmp_path):
    module = AutoModel.from_pretrained(build_family_encoder(family, tmp_path / family, layers=3)).eval()
    ids, mask = _batch(module.config.vocab_size)
    with torch.no_grad():
        plain = module(input_ids=ids, attention_mask=mask).last_hidden_state
    eliminate_word_vectors(module, [1, 1, 1])
    assert retention_of(module) == []  # nothing to drop: the encoder is left as it was
    eliminate_word_vectors(module, "1,0.5,0.25")
    assert _vectors_per_layer(module, input_ids=ids[:1, :11], attention_mask=mask[:1, :11]) == [11, 6, 3]
    with torch.no_grad():
        batched = module(input_ids=ids, attention_mask=mask).last_hidden_state
    assert batched.shape == plain.shape
    assert not torch.allclose(batched[mask.bool()], plain[mask.bool()], atol=1e-4)
    for row in range(len(ids)):
        n = int(mask[row].sum())
        with torch.no_grad():
            alone = module(input_ids=ids[row : row + 1, :n], attention_mask=mask[row : row + 1, :n]).last_hidden_state
        assert torch.allclose(alone[0], batched[row, :n], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = export_onnx(module, tmp_path / "model.onnx")
    _assert_onnx_same_in_any_batch(tmp_path / "model.onnx", names, ids, mask, batched)


def _assert_onnx_same_in_any_batch(path, names, ids, mask, expected):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(rows, length):
        feeds = {"input_ids": ids[rows, :length].numpy(), "attention_mask": mask[rows, :length].numpy()}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = numpy.zeros_like(feeds["input_ids"])
        return session.run(None, feeds)[0]

    batched = run(list(range(len(ids))), ids.shape[1])
    real = mask.numpy().astype(bool)
    assert numpy.abs(batched - expected.numpy())[real].max() < 1e-4
    order = list(range(len(ids)))
    random.Random(0).shuffle(order)
    shuffled = run(order, ids.shape[1])
    for row in range(len(ids)):
        n = int(mask[row].sum())
        alone = run([row], n)[0]
        assert numpy.array_equal(alone, batched[row, :n])  # to the bit
        assert numpy.array_equal(shuffled[order.index(row), :n], batched[row, :n])


def test_a_dropped_vector_keeps_the_value_of_the_layer_that_dropped_it(encoders):
    full = AutoModel.from_pretrained(encoders["bert"]).eval()  # 2 layers
    module = copy.deepcopy(full)
    eliminate_word_vectors(module, [1, 0.4])
    ids, mask = _batch(full.config.vocab_size, lengths=(10,))
    with torch.no_grad():
        after_one = full(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1][0]
        out = module(input_ids=ids, attention_mask=mask).last_hidden_state[0]
    frozen = [i for i in range(10) if torch.allclose(out[i], after_one[i], atol=1e-6)]
    assert len(frozen) == 10 - 4 and 0 not in frozen  # 4 of 10 went on; the first always does


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - set(ELIMINATING_FAMILIES)))
def test_families_whose_layers_need_their_own_positions_are_refused(family, tmp_path):
    module = AutoModel.from_pretrained(build_family_encoder(family, tmp_path / family, layers=2))
    with pytest.raises(ValueError, match="word-vector elimination supports the families"):
        eliminate_word_vectors(module, [1, 0.5])


def test_a_deep_copy_runs_its_own_schedule_and_layer_distillation_is_refused(encoders):
    module = AutoModel.from_pretrained(encoders["bert"]).eval()
    eliminate_word_vectors(module, [1, 0.5])
    copied = copy.deepcopy(module)
    eliminate_word_vectors(copied, [1, 0.2])
    ids, mask = _batch(module.config.vocab_size, lengths=(10,))
    assert _vectors_per_layer(copied, input_ids=ids, attention_mask=mask) == [10, 2]
    assert _vectors_per_layer(module, input_ids=ids, attention_mask=mask) == [10, 5]
    with pytest.raises(ValueError, match="cannot run through it"):
        module(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    config = _textcat_pipeline(encoders).config.copy()
    model = config["components"]["transformer"]["model"]
    model.update(word_retention="1,0.5", layer_teacher=str(encoders["bert"]))
    with pytest.raises(ValueError, match="distil first, then train the student with word_retention"):
        spacy.util.load_model_from_config(config, auto_fill=True)


def _textcat_pipeline(encoders, retention: str = "", textcat: str = "textcat"):
    nlp = build_pipeline(encoders["bert"], textcat=textcat)
    nlp.remove_pipe("ner")
    if retention:
        config = nlp.config.copy()
        config["components"]["transformer"]["model"]["word_retention"] = retention
        nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    return nlp


def test_training_with_a_schedule_reaches_the_encoder_and_survives_saving(encoders, tmp_path):
    nlp = _textcat_pipeline(encoders, retention="1,0.5")
    history = train(nlp, make_examples(nlp, n=16), steps=3)
    assert all(numpy.isfinite(h["textcat"]) for h in history)
    module = hf_module(nlp.get_pipe("transformer").encoder)
    assert retention_of(module) == [1.0, 0.5]
    texts = ["Alice flew to Paris on Monday with Bob and Carol", "hi"]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert retention_of(hf_module(loaded.get_pipe("transformer").encoder)) == [1.0, 0.5]
    assert [doc.cats for doc in loaded.pipe(texts)] == expected


def test_compress_word_retention_matches_the_torch_pipeline_and_refuses_token_level_heads(
    encoders, trained_bert, tmp_path
):
    # The project's own textcat (a TextCategorizer subclass that also learns soft targets) is a
    # text classifier too: the check goes by what a component is, not by its factory's name.
    nlp = _textcat_pipeline(encoders, textcat="bertprod_soft_textcat")
    train(nlp, make_examples(nlp), steps=6)
    nlp.to_disk(tmp_path / "textcat")
    out = tmp_path / "eliminating"
    cmd = [sys.executable, "-m", "spacy", "bertprod", "compress", str(tmp_path / "textcat"), str(out)]
    result = subprocess.run(cmd + ["--quantize", "fp32", "--word-retention", "1,0.5"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "compress_report.json").read_text())
    assert report["word_retention"] == {
        "shares": [1.0, 0.5],
        "source": "--word-retention",
        "layer_bound_speedup": 1.333,
    }
    assert report["fusion"]["attention_fused_layers"] == 2  # significance does not stop ORT's attention fusion
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-4  # against the torch pipeline with the schedule
    assert report["parity"]["batch_invariance"]["identical_all"] == 1.0
    assert spacy.load(out)("Alice flew to Paris").cats
    cmd = [sys.executable, "-m", "spacy", "bertprod", "compress", str(trained_bert), str(tmp_path / "ner")]
    refused = subprocess.run(cmd + ["--word-retention", "1,0.5"], capture_output=True, text=True)
    assert refused.returncode == 1 and "for text classification (textcat" in " ".join(refused.stdout.split())
