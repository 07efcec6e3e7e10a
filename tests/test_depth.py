"""Depth on demand: random-depth training runs prefixes of the encoder, compress --depth cuts to one."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from transformers import AutoModel

from spacy_bertprod.backends.torch import hf_module
from spacy_bertprod.depth import keep_first_layers, layer_list, train_at_random_depth
from spacy_bertprod.families import FAMILIES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from tiny_encoder import build_family_encoder  # noqa: E402

from conftest import build_pipeline, make_examples, train


def _depths_run(module, passes: int, **inputs) -> list:
    """How many layers each forward pass ran (a hook on every layer counts its calls)."""
    _, _, layers = layer_list(module, "test")
    calls = []
    hooks = [layer.register_forward_hook(lambda *_: calls.append(1)) for layer in layers]
    depths = []
    for _ in range(passes):
        before = len(calls)
        module(**inputs)
        depths.append(len(calls) - before)
    for hook in hooks:
        hook.remove()
    return depths


def _inputs():
    return {"input_ids": torch.tensor([[2, 5, 6, 7, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}


def test_cut_encoder_equals_the_full_encoders_hidden_state_at_that_layer(encoders):
    full = AutoModel.from_pretrained(encoders["bert"]).eval()
    cut = AutoModel.from_pretrained(encoders["bert"]).eval()
    assert keep_first_layers(cut, 1, "test") == 2
    assert cut.config.num_hidden_layers == 1 and len(layer_list(cut, "test")[2]) == 1
    with torch.no_grad():
        expected = full(**_inputs(), output_hidden_states=True).hidden_states[1]
        assert torch.equal(cut(**_inputs()).last_hidden_state, expected)


def test_cut_refuses_impossible_depths_and_shared_layers(encoders):
    module = AutoModel.from_pretrained(encoders["bert"])
    for depth in (0, 3):
        with pytest.raises(ValueError, match=f"--depth {depth}: test has 2 layers; keep between 1 and 2"):
            keep_first_layers(module, depth, "test")
    albert = AutoModel.from_pretrained(encoders["albert"])
    with pytest.raises(ValueError, match="ALBERT shares one set of layer weights"):
        keep_first_layers(albert, 1, "test")


def test_random_depth_trains_prefixes_and_runs_every_layer_otherwise(encoders):
    module = AutoModel.from_pretrained(encoders["bert"])
    train_at_random_depth(module, 1.0)
    torch.manual_seed(0)
    module.train()
    assert _depths_run(module, 20, **_inputs()) == [1] * 20  # 2 layers: the only shorter prefix is 1
    assert len(layer_list(module, "test")[2]) == 2  # restored after each pass
    module.eval()
    assert _depths_run(module, 5, **_inputs()) == [2] * 5
    module.train()
    with torch.no_grad():
        assert _depths_run(module, 5, **_inputs()) == [2] * 5
    half = AutoModel.from_pretrained(encoders["bert"]).train()
    train_at_random_depth(half, 0.5)
    torch.manual_seed(0)
    depths = _depths_run(half, 200, **_inputs())
    assert 60 < depths.count(1) < 140 and set(depths) == {1, 2}
    with pytest.raises(ValueError, match="random_depth must be between 0 and 1"):
        train_at_random_depth(half, 1.5)


@pytest.mark.parametrize("family", sorted(f for f in FAMILIES if FAMILIES[f].layer_prefix))
def test_every_family_with_layers_trains_at_random_depth_and_cuts(family, tmp_path):
    folder = build_family_encoder(family, tmp_path / family, layers=3)
    module = AutoModel.from_pretrained(folder)
    train_at_random_depth(module, 1.0)
    module.train()
    torch.manual_seed(0)
    inputs = {"input_ids": torch.tensor([[0, 5, 6, 7, 2]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    depths = _depths_run(module, 12, **inputs)
    assert set(depths) == {1, 2}  # prefixes of 1 or 2 of the 3 layers, never all 3
    module(**inputs).last_hidden_state.sum().backward()  # gradients flow through a prefix
    cut = AutoModel.from_pretrained(folder).eval()
    keep_first_layers(cut, 2, family)
    assert cut.config.num_hidden_layers == 2 and _depths_run(cut, 1, **inputs) == [2]


def test_random_depth_in_the_config_reaches_training(encoders):
    config = build_pipeline(encoders["bert"]).config.copy()
    config["components"]["transformer"]["model"]["random_depth"] = 1.0
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    train(nlp, make_examples(nlp, n=16), steps=1)
    module = hf_module(nlp.get_pipe("transformer").encoder)
    module.train()
    with torch.enable_grad():
        assert set(_depths_run(module, 5, **_inputs())) == {1}
    config["components"]["transformer"]["model"]["random_depth"] = -0.1
    with pytest.raises(ValueError, match="random_depth must be between 0 and 1"):
        spacy.util.load_model_from_config(config, auto_fill=True)


def test_compress_depth_cuts_the_pipeline_and_checks_against_the_cut_original(trained_bert, tmp_path):
    out = tmp_path / "depth1"
    cmd = [sys.executable, "-m", "spacy", "bertprod", "compress", str(trained_bert), str(out), "--quantize", "fp32"]
    result = subprocess.run(cmd + ["--depth", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "compress_report.json").read_text())
    assert report["depth"] == {"original_layers": 2, "kept_layers": 1} and report["transformer"]["layers"] == 1
    # The cut happens in the loaded pipeline itself, so the prediction check compares with the cut
    # torch pipeline (int8 error alone); predictions agree up to near-ties of a barely trained head.
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-4
    predictions = report["parity"]["predictions"]
    assert predictions["ner_identical_docs"] >= 0.95 and predictions["textcat_identical_top_label"] >= 0.95
    assert report["parity"]["batch_invariance"]["identical_all"] == 1.0
    nlp = spacy.load(out)
    assert nlp("Alice flew to Paris").cats
    refused = subprocess.run(cmd + ["--depth", "5", "--force"], capture_output=True, text=True)
    assert refused.returncode == 1 and "has 2 layers; keep between 1 and 2" in " ".join(refused.stdout.split())


def test_compress_depth_cuts_a_stock_spacy_transformers_pipeline(encoders, tmp_path):
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    nlp = build_pipeline(encoders["bert"], stock=True)
    train(nlp, make_examples(nlp), steps=4)
    nlp.to_disk(tmp_path / "stock")
    report = compress_pipeline(tmp_path / "stock", tmp_path / "cut", CompressSettings(quantize="fp32", depth=1))
    assert report["transformer"]["source"] == "spacy-transformers" and report["depth"]["kept_layers"] == 1
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
    assert report["parity"]["predictions"]["ner_identical_docs"] >= 0.95  # near-ties of a 4-step head aside


def test_a_deep_copy_of_a_wrapped_encoder_runs_its_own_weights(encoders):
    """compress deep-copies the encoder to prune or trim it: the copy must not run the original."""
    from spacy_bertprod.backends.torch import train_in_bfloat16

    module = AutoModel.from_pretrained(encoders["bert"])
    train_in_bfloat16(module)
    train_at_random_depth(module, 0.5)
    copied = copy.deepcopy(module).eval()
    with torch.no_grad():
        copied.embeddings.word_embeddings.weight.zero_()
        mine, original = copied(**_inputs()), module.eval()(**_inputs())
    assert not torch.equal(mine.last_hidden_state, original.last_hidden_state)
    copied.train()
    torch.manual_seed(0)
    assert set(_depths_run(copied, 20, **_inputs())) == {1, 2}  # its own layers, at random depth
    assert len(layer_list(copied, "t")[2]) == 2  # restored after each pass
