"""How close an ONNX encoder runs to this machine's int8 matrix-multiply ceiling.

    python reports/speed/roofline.py PIPELINE [PIPELINE ...] --data test.spacy [--rounds 5] [--output roofline.json]

For each compressed pipeline: the multiply-accumulates per wordpiece of its weight matrices (read
from the graph: every MatMul-like node's 2-D weight, K x N MACs per position), the real
(non-pad) wordpieces/s of its session on exactly the batches the component builds, and the
throughput ONNX Runtime's own `MatMulInteger` reaches on this machine at the same weight shapes
and rows per call. "GEMM ceiling" is the wordpieces/s the encoder would reach if it did nothing
but its weight GEMMs at that speed (attention scores, GELU, LayerNorm and quantisation free):
the upper bound that kernel tuning inside ONNX Runtime's stock operators could approach.
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy
import spacy

from spacy_bertprod.measure.benchmark import component_batches, time_batches
from spacy_bertprod.texts import read_texts

MATMUL_OPS = {
    "MatMul",
    "Gemm",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QLinearMatMul",
    "Attention",
    "QAttention",
    "MultiHeadAttention",
}


def weight_shapes(model_bytes: bytes) -> Counter:
    """(K, N) -> how many MatMul-like nodes multiply every position by a K x N weight."""
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    dims = {init.name: tuple(init.dims) for init in graph.initializer}
    shapes: Counter = Counter()
    for node in graph.node:
        # Heads in the graph (compress --heads-in-graph) run once per doc, not per wordpiece.
        if node.op_type not in MATMUL_OPS or node.name.startswith("bertprod_head/"):
            continue
        weights = [dims[name] for name in node.input if len(dims.get(name, ())) == 2]
        if weights:
            shapes[weights[0]] += 1
    return shapes


def int8_gemm_gmacs(rows: int, k: int, n: int, threads: int, seconds: float = 1.0) -> float:
    """Best GMAC/s of ONNX Runtime's MatMulInteger (uint8 x int8 -> int32) for rows x k x n."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = numpy.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=numpy.int8), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "W"], ["Y"])],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [rows, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [rows, n])],
        [weight],
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    feed = {"A": rng.integers(0, 256, (rows, k), dtype=numpy.uint8)}
    for _ in range(3):
        session.run(None, feed)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return rows * k * n / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipelines", nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    texts = read_texts(args.data)
    rows = []
    for path in args.pipelines:
        if not Path(path, "config.cfg").exists():
            sys.exit(f"{path} is not a saved spaCy pipeline: pass the folder of a compressed pipeline.")
        nlp = spacy.load(path)
        session, batches = component_batches(nlp, [nlp.make_doc(t) for t in texts])
        if session is None:
            sys.exit(f"{path} has no ONNX transformer: `bertprod compress` it first.")
        shapes = weight_shapes(session.model_bytes)
        if not shapes:
            sys.exit(f"{path}: no MatMul-like node with a 2-D weight in its graph; nothing to compare against.")
        threads = session.session.get_session_options().intra_op_num_threads or len(os.sched_getaffinity(0))
        positions = [b.attention_mask.size for b in batches]
        real = int(sum(b.attention_mask.sum() for b in batches))
        gemm_rows = int(statistics.median(positions))
        time_batches(session, batches)  # warm-up
        seconds = statistics.median(time_batches(session, batches) for _ in range(args.rounds))
        macs = sum(k * n * count for (k, n), count in shapes.items())
        # Seconds per padded position if every weight GEMM ran at MatMulInteger's best speed.
        peak = {(k, n): int8_gemm_gmacs(gemm_rows, k, n, threads) for (k, n) in shapes}
        gemm_s = sum(k * n * count / (peak[k, n] * 1e9) for (k, n), count in shapes.items())
        ceiling = real / (gemm_s * sum(positions))
        row = {
            "pipeline": path,
            "encoder_calls": len(batches),
            "median_positions_per_call": gemm_rows,
            "pad_fraction": 1 - real / sum(positions),
            "weight_macs_per_wordpiece": macs,
            "real_wordpieces_per_s": real / seconds,
            "achieved_gmacs": macs * sum(positions) / seconds / 1e9,
            "int8_gemm_gmacs": {f"{k}x{n}": gmacs for (k, n), gmacs in peak.items()},
            "gemm_ceiling_wordpieces_per_s": ceiling,
            "share_of_ceiling": real / seconds / ceiling,
        }
        rows.append(row)
        print(
            f"{path}: {real / seconds:,.0f} real wordpieces/s; {macs / 1e6:.2f}M weight MACs/wordpiece; "
            f"{row['achieved_gmacs']:.0f} GMAC/s achieved; MatMulInteger at these shapes "
            f"{min(peak.values()):.0f}-{max(peak.values()):.0f} GMAC/s; GEMM ceiling {ceiling:,.0f} wordpieces/s; "
            f"{row['share_of_ceiling']:.0%} of it"
        )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"data": str(args.data), "pipelines": rows}, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
