"""The benchmark runs end to end and reports sane, positive numbers (it asserts no speed target)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_script(path: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / path), *map(str, args)], capture_output=True, text=True, **kwargs)


def bertprod(command: str, *args, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "spacy", "bertprod", command, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


@pytest.mark.slow
def test_benchmark_cli(trained_bert, compressed_bert, tmp_path):
    data = tmp_path / "texts.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"Alice flew to Paris on day {i} with Bob"}) for i in range(40)))
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "bertprod",
            "benchmark",
            str(trained_bert),
            str(compressed_bert["int8"]),
            "--data",
            str(data),
            "--batch-size",
            "16",
            "--repeats",
            "2",
            "--rounds",
            "2",
            "--latency-docs",
            "10",
            "--report",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    torch_run, onnx_run = report["results"]
    # Two rounds in rotated order, each in a fresh process: 2 rounds x 2 passes per pipeline.
    assert report["rounds"] == 2 and len(torch_run["words_per_s"]["runs"]) == 4
    assert f"[round 2/2, 1/2] {compressed_bert['int8']}" in result.stdout
    for run in (torch_run, onnx_run):
        assert run["n_words"] == 40 * 9
        assert run["words_per_s"]["median"] > 0
        assert run["words_per_s"]["min"] <= run["words_per_s"]["median"] <= run["words_per_s"]["max"]
        assert 0 < run["latency_ms_batch1"]["p50"] <= run["latency_ms_batch1"]["p95"]
        assert run["peak_rss_mb"] > 50 and run["size_on_disk_bytes"] > 0 and run["load_s"] > 0
    assert "bare_session" not in torch_run
    assert onnx_run["bare_session"]["wordpieces_per_s"] > onnx_run["bare_session"]["words_per_s"] > 0
    assert 0.0 <= onnx_run["bare_session"]["pad_fraction"] < 1.0 and onnx_run["bare_session"]["n_batches"] >= 1
    assert torch_run["speedup_vs_first"] == 1.0
    assert "| pipeline |" in result.stdout


def test_benchmark_refuses_missing_data(trained_bert, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "bertprod",
            "benchmark",
            str(trained_bert),
            "--data",
            str(tmp_path / "nope.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "does not exist" in " ".join(result.stdout.split())


def test_rounds_merge_every_pass_and_refuse_zero(tmp_path):
    from spacy_bertprod.measure.benchmark import merge_rounds, run_benchmark

    def one_round(rates, p50, rss, bare):
        return {
            "words_per_s": {"runs": rates},
            "latency_ms_batch1": {"p50": p50, "p95": 2 * p50, "n_docs": 3},
            "load_s": 1.0,
            "peak_rss_mb": rss,
            "bare_session": {"words_per_s": bare, "wordpieces_per_s": 2 * bare, "seconds": [1.0]},
        }

    merged = merge_rounds([one_round([10.0, 30.0], 1.0, 100, 40.0), one_round([20.0, 50.0], 3.0, 300, 60.0)])
    assert merged["words_per_s"] == {"median": 25.0, "min": 10.0, "max": 50.0, "runs": [10.0, 30.0, 20.0, 50.0]}
    assert merged["latency_ms_batch1"]["p50"] == 2.0 and merged["peak_rss_mb"] == 300
    assert merged["bare_session"]["pipeline_share_of_bare"] == 0.5 and merged["rounds"] == 2
    (tmp_path / "config.cfg").write_text("")
    with pytest.raises(ValueError, match="--rounds and --repeats must be at least 1"):
        run_benchmark([str(tmp_path)], ["a text"], rounds=0)


def test_compare_encoders(compressed_bert, trained_bert, tmp_path):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"Carol met Dave in Tokyo on day {i}" for i in range(30)))
    out = tmp_path / "ab.json"
    pipelines = [str(compressed_bert["fp32"]), str(compressed_bert["int8"])]
    result = bertprod("compare-encoders", *pipelines, "--data", data, "--rounds", 3, "--report", out)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())["pipelines"]
    assert report[pipelines[0]]["vs_first"] == 1.0
    for run in report.values():
        assert len(run["seconds"]) == 3 and run["wordpieces_per_s_best"] >= run["wordpieces_per_s_median"] > 0
    refused = bertprod("compare-encoders", trained_bert, "--data", data)
    assert refused.returncode != 0 and "no ONNX transformer" in " ".join((refused.stdout + refused.stderr).split())
    # Bucketings side by side: the component's cost-based one pads less than the greedy one.
    data.write_text("\n".join(("Carol met Dave in Tokyo " * (1 + i % 7)).strip() for i in range(60)))
    entries = [f"greedy={pipelines[1]}:greedy", f"cost={pipelines[1]}:cost"]
    result = bertprod("compare-encoders", *entries, "--data", data, "--rounds", 2, "--report", out)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())["pipelines"]
    assert report["greedy"]["planner"] == "greedy" and report["cost"]["planner"] == "cost"
    assert report["cost"]["pad_fraction"] < report["greedy"]["pad_fraction"]


def test_profile_encoder(compressed_bert, tmp_path):
    """Kernel time by operator, on the component's own session settings: no SkipLayerNormalization."""
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"Carol met Dave in Tokyo on day {i}" for i in range(20)))
    out = tmp_path / "ops.json"
    result = bertprod("profile-encoder", compressed_bert["int8"], "--data", data, "--report", out, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ops = json.loads(out.read_text())["ops"]
    assert "QAttention" in ops and "LayerNormalization" in ops and "SkipLayerNormalization" not in ops
    assert abs(sum(row["share"] for row in ops.values()) - 1) < 1e-6
    assert not list(tmp_path.glob("onnxruntime_profile*"))  # the profile file is not left behind


def test_roofline_script(compressed_bert, trained_bert, tmp_path):
    """The GEMM count read from the graph is the architecture's: 2 layers x (4 H^2 + 2 H I) per wordpiece."""
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"Carol met Dave in Tokyo on day {i}" for i in range(20)))
    out = tmp_path / "roofline.json"
    pipelines = [str(compressed_bert["fp32"]), str(compressed_bert["int8"])]
    result = run_script("reports/speed/roofline.py", *pipelines, "--data", data, "--rounds", 2, "--output", out)
    assert result.returncode == 0, result.stdout + result.stderr
    for row in json.loads(out.read_text())["pipelines"]:
        assert row["weight_macs_per_wordpiece"] == 2 * (4 * 32 * 32 + 2 * 32 * 64)
        assert row["real_wordpieces_per_s"] > 0 and row["gemm_ceiling_wordpieces_per_s"] > 0
        assert all(gmacs > 0 for gmacs in row["int8_gemm_gmacs"].values())
    refused = run_script("reports/speed/roofline.py", trained_bert, "--data", data)
    assert refused.returncode != 0 and "no ONNX transformer" in refused.stderr
