"""Same text, same answer: a doc's predictions never depend on its batch-mates, their order,
the batch size, the padding or the process (int8 with calibrated activation scales, and fp32)."""

import json
import random

import numpy
import pytest
import spacy

from spacy_bertprod.compress import CompressSettings, compress_pipeline
from spacy_bertprod.compress.quantize import QuantizeSettings

from conftest import PEOPLE, PLACES, WORDS, assert_same, snapshot

rng = random.Random(7)
SUBJECTS = [
    f"{rng.choice(PEOPLE)} {rng.choice(['flew to', 'works in', 'visited'])} {rng.choice(PLACES)} "
    + " ".join(rng.choices(WORDS, k=rng.randint(0, 8)))
    for _ in range(24)
]
# Batch-mates chosen to move a per-batch activation scale or the padding as far as possible.
LONG = ["Frank moved to Madrid and " * 40, " ".join(rng.choices(WORDS, k=300))]
SHORT = ["x", "Bob", "hi !"]
ODD = [
    "👩‍👩‍👧‍👦🔥🔥🔥 ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "https://example.com/" + "a" * 400,
    "ALL CAPS SHOUTING!!!!!!!",
    "\u200b\u200d zero width",
    "9" * 200,
]


@pytest.fixture(scope="module", params=["int8", "fp32"])
def pipeline(request, compressed_bert):
    return spacy.load(compressed_bert[request.param])


def test_same_text_alone_and_among_any_batch_mates(pipeline):
    alone = snapshot(pipeline(t) for t in SUBJECTS)
    for mates in (LONG, SHORT, ODD, LONG + SHORT + ODD):
        mixed = SUBJECTS + mates
        rng.shuffle(mixed)
        docs = {d.text: d for d in pipeline.pipe(mixed, batch_size=len(mixed))}
        assert_same(snapshot(docs[t] for t in SUBJECTS), alone, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 16, 64])
def test_same_text_any_batch_size_and_order(pipeline, batch_size):
    alone = snapshot(pipeline(t) for t in SUBJECTS)
    texts = SUBJECTS + LONG + ODD
    order = list(range(len(texts)))
    random.Random(batch_size).shuffle(order)
    docs = list(pipeline.pipe([texts[i] for i in order], batch_size=batch_size))
    by_index = {i: doc for i, doc in zip(order, docs)}
    assert_same(snapshot(by_index[i] for i in range(len(SUBJECTS))), alone, atol=1e-5)


def test_same_text_in_another_process(pipeline):
    texts = SUBJECTS + LONG + SHORT
    single = snapshot(pipeline.pipe(texts, batch_size=4))
    assert_same(snapshot(pipeline.pipe(texts, batch_size=4, n_process=2)), single, atol=1e-5)


def test_report_measures_batch_invariance(compressed_bert):
    report = json.loads((compressed_bert["int8"] / "compress_report.json").read_text())
    invariance = report["parity"]["batch_invariance"]
    assert invariance["identical_batch_64"] == 1.0
    assert invariance["identical_shuffled_batch_64"] == 1.0
    assert invariance["identical_all"] == 1.0
    quantization = report["settings"]["quantization"]
    assert quantization["activation_scales"] == "calibrated" and quantization["batch_invariant"]
    assert report["settings"]["calibration"]["calibrated_tensors"] > 0
    # No DynamicQuantizeLinear is left: nothing is measured per batch at run time.
    import onnx

    graph = onnx.load(str(compressed_bert["int8"] / "transformer" / "model.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "DynamicQuantizeLinear" not in ops and "QuantizeLinear" in ops


def test_dynamic_scales_stay_available_and_are_reported(trained_bert, tmp_path):
    settings = CompressSettings(quantize="int8", quantization=QuantizeSettings(activation_scales="dynamic"))
    report = compress_pipeline(trained_bert, tmp_path / "dynamic", settings)
    assert report["settings"]["quantization"]["batch_invariant"] is False
    assert report["settings"]["calibration"] is None
    assert "identical_batch_64" in report["parity"]["batch_invariance"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation_scales": "per-batch"}, "activation scales must be one of"),
        ({"calibration_percentile": 20.0}, "percentile must be in"),
    ],
)
def test_bad_quantization_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantizeSettings(**kwargs)


def test_padding_never_reaches_a_real_position(compressed_bert):
    """fp32 and int8: a sequence's hidden states with pad positions after it equal its own."""
    from spacy_bertprod.backends import EncoderBatch

    for quantize in ("fp32", "int8"):
        nlp = spacy.load(compressed_bert[quantize])
        trf = nlp.get_pipe("transformer")
        onnx, tokenizer = trf.onnx_session, trf.tokenizer
        (pieces,) = tokenizer.encode_spans([nlp.make_doc("Alice flew to Paris")[:]])
        ids = pieces[0].ids
        n_pad = tokenizer.max_length - len(ids)  # as many as the encoder's positions allow
        alone = onnx.run(EncoderBatch(ids[None, :], numpy.ones((1, len(ids)), dtype="int64")))
        padded_ids = numpy.concatenate([ids, numpy.full(n_pad, tokenizer.pad_id)])[None, :]
        # Pad positions hold the pad id, and also a random one: neither may leak into real ones.
        for filler in (padded_ids, numpy.concatenate([ids, numpy.arange(n_pad) % 50 + 5])[None, :]):
            mask = numpy.concatenate([numpy.ones(len(ids)), numpy.zeros(n_pad)]).astype("int64")[None, :]
            padded = onnx.run(EncoderBatch(filler, mask))
            numpy.testing.assert_array_equal(padded[0, : len(ids)], alone[0])


@pytest.mark.parametrize("flag", ["--report", "--output"])
def test_invariance_cli(compressed_bert, tmp_path, flag):
    import subprocess
    import sys

    data = tmp_path / "texts.txt"
    data.write_text("\n".join(SUBJECTS + LONG + ODD), encoding="utf8")
    out = tmp_path / "invariance.json"
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "bertprod",
        "invariance",
        str(compressed_bert["int8"]),
        "--data",
        str(data),
        "--batch-sizes",
        "1,8,64",
        "--n-process",
        "2",
        flag,
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    if flag == "--output":  # the old spelling still works, and says what to write instead
        assert "deprecated: write `--report" in result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["n_docs"] == len(SUBJECTS + LONG + ODD)
    for key in (
        "identical_batch_1",
        "identical_batch_8",
        "identical_batch_64",
        "identical_shuffled_batch_64",
        "identical_n_process_2",
    ):
        assert report[key] == 1.0, key


@pytest.mark.parametrize("content, message", [("", "holds no texts"), ('{"txt": 1}\n', "no 'text' string")])
def test_compress_sample_errors_name_the_file(trained_bert, tmp_path, content, message):
    import subprocess
    import sys

    sample = tmp_path / ("sample.jsonl" if content else "sample.txt")
    sample.write_text(content, encoding="utf8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "bertprod",
            "compress",
            str(trained_bert),
            str(tmp_path / "out"),
            "--sample",
            str(sample),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    said = "".join(result.stdout.split())  # wasabi wraps long lines
    assert "".join(message.split()) in said and str(sample) in said


def test_padding_never_reaches_a_real_position_in_torch(trained_bert):
    """The trainable backend too: pad positions (any ids) change no real position's vector."""
    from spacy_bertprod.backends import EncoderBatch

    nlp = spacy.load(trained_bert)
    trf = nlp.get_pipe("transformer")
    encoder, tokenizer = trf.encoder, trf.tokenizer
    (pieces,) = tokenizer.encode_spans([nlp.make_doc("Grace visited Tokyo and met Dave")[:]])
    ids = pieces[0].ids
    n_pad = tokenizer.max_length - len(ids)
    alone = encoder.predict(EncoderBatch(ids[None, :], numpy.ones((1, len(ids)), dtype="int64")))
    mask = numpy.concatenate([numpy.ones(len(ids)), numpy.zeros(n_pad)]).astype("int64")[None, :]
    for pad_ids in (numpy.full(n_pad, tokenizer.pad_id), numpy.arange(n_pad) % 50 + 5):
        padded = encoder.predict(EncoderBatch(numpy.concatenate([ids, pad_ids])[None, :], mask))
        numpy.testing.assert_allclose(padded[0, : len(ids)], alone[0], atol=1e-5)
