"""Speed and footprint of spaCy pipelines on the same texts: words/s, latency, RSS, size, load time.

Each pipeline is measured in its own fresh worker process (spawned), so peak RSS and load time
are its own and one pipeline's caches cannot help the next. For ONNX pipelines the bare
InferenceSession is also timed on exactly the wordpiece batches the component builds, which
shows how much the spaCy side (tokenization, alignment, pooling, heads) costs.
"""

import logging
import multiprocessing
import resource
import statistics
import time
import traceback
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import BertprodError, InvalidInput
from ..paths import folder_size

logger = logging.getLogger("spacy_bertprod.measure")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def component_batches(nlp, docs, planner=None):
    """The ONNX session and the exact padded batches the pipeline's ONNX component would run
    on `docs` (None if the pipeline has no ONNX transformer). `planner(lengths, max_items)`
    replaces the component's length bucketing (`bertprod compare-encoders` compares planners).
    Docs are gathered as the component's pipe() gathers them: by tokens (pipe_batch_tokens)."""
    from ..component import BertprodTransformer

    trf = next((p for _, p in nlp.pipeline if isinstance(p, BertprodTransformer)), None)
    if trf is None or trf.onnx_session is None:
        return None, []
    return trf.onnx_session, list(trf.encoder_batches(docs, planner))


def time_batches(session, batches) -> float:
    start = time.perf_counter()
    for batch in batches:
        session.run(batch)
    return time.perf_counter() - start


def _bare_session(nlp, texts: List[str], batch_size: int, repeats: int) -> Optional[Dict]:
    """Time session.run alone on the batches the ONNX component would build."""
    docs = [nlp.make_doc(t) for t in texts]
    session, batches = component_batches(nlp, docs)
    if session is None:
        return None
    n_wordpieces = int(sum(b.attention_mask.sum() for b in batches))
    n_padded = int(sum(b.attention_mask.size for b in batches))
    n_words = sum(len(d) for d in docs)
    for batch in batches[:2]:
        session.run(batch)  # warm-up
    times = [time_batches(session, batches) for _ in range(repeats)]
    median = statistics.median(times)
    # wordpieces_per_s counts real (non-pad) wordpieces; pad_fraction is the share of the padded
    # batch positions that are padding, which the encoder computes all the same.
    return {
        "wordpieces_per_s": n_wordpieces / median,
        "words_per_s": n_words / median,
        "seconds": times,
        "n_batches": len(batches),
        "pad_fraction": 1 - n_wordpieces / max(n_padded, 1),
    }


def measure_pipeline(
    path: str, texts: List[str], batch_size: int, n_process: int, repeats: int, latency_docs: int
) -> Dict:
    """Measure one pipeline (runs inside the worker process)."""
    import spacy

    start = time.perf_counter()
    nlp = spacy.load(path)
    load_s = time.perf_counter() - start
    n_words = sum(len(doc) for doc in nlp.tokenizer.pipe(texts))
    list(nlp.pipe(texts[: max(batch_size, 32)], batch_size=batch_size))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=batch_size, n_process=n_process):
            pass
        times.append(time.perf_counter() - start)
    rates = [n_words / t for t in times]
    latency_texts = texts[:latency_docs]
    latencies = []
    for text in latency_texts:
        start = time.perf_counter()
        nlp(text)
        latencies.append((time.perf_counter() - start) * 1000)
    result = {
        "pipeline": path,
        "components": list(nlp.pipe_names),
        "n_texts": len(texts),
        "n_words": n_words,
        "batch_size": batch_size,
        "n_process": n_process,
        "words_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": rates},
        "latency_ms_batch1": {
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
            "n_docs": len(latencies),
            "mean_words_per_doc": sum(len(nlp.make_doc(t)) for t in latency_texts) / max(len(latency_texts), 1),
        },
        "load_s": load_s,
        "size_on_disk_bytes": folder_size(Path(path)),
    }
    bare = _bare_session(nlp, texts, batch_size, repeats)
    if bare is not None:
        bare["pipeline_share_of_bare"] = result["words_per_s"]["median"] / bare["words_per_s"]
        result["bare_session"] = bare
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _worker(queue, *args) -> None:
    try:
        queue.put(("ok", measure_pipeline(*args)))
    except BertprodError as err:  # reported to the parent, which names the pipeline
        queue.put(("error", f"{type(err).__name__}: {err}"))
    except Exception:  # a bug: the parent shows its traceback
        queue.put(("bug", traceback.format_exc()))


def _measure_in_own_process(context, path: str, args: tuple) -> Dict:
    queue = context.Queue()
    process = context.Process(target=_worker, args=(queue, path, *args))
    process.start()
    status, payload = queue.get()
    process.join()
    if status == "error":
        raise InvalidInput(f"Benchmarking {path} failed: {payload}")
    if status == "bug":
        raise RuntimeError(f"Benchmarking {path} failed in its worker process:\n{payload}")
    return payload


def merge_rounds(rounds: List[Dict]) -> Dict:
    """One pipeline's result over several rounds: every timed pass counts for words/s; latency,
    RSS and the bare session take the median (max for RSS) of the rounds."""
    merged = dict(rounds[0])
    rates = [rate for r in rounds for rate in r["words_per_s"]["runs"]]
    merged["words_per_s"] = {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "runs": rates}
    merged["latency_ms_batch1"] = dict(rounds[0]["latency_ms_batch1"])
    for q in ("p50", "p95"):
        merged["latency_ms_batch1"][q] = statistics.median(r["latency_ms_batch1"][q] for r in rounds)
    merged["load_s"] = statistics.median(r["load_s"] for r in rounds)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    if "bare_session" in merged:
        bare = dict(rounds[0]["bare_session"])
        for key in ("words_per_s", "wordpieces_per_s"):
            bare[key] = statistics.median(r["bare_session"][key] for r in rounds)
        bare["seconds"] = [t for r in rounds for t in r["bare_session"]["seconds"]]
        bare["pipeline_share_of_bare"] = merged["words_per_s"]["median"] / bare["words_per_s"]
        merged["bare_session"] = bare
    merged["rounds"] = len(rounds)
    return merged


def run_benchmark(
    pipelines: List[str],
    texts: List[str],
    *,
    batch_size: int = 64,
    n_process: int = 1,
    repeats: int = 3,
    latency_docs: int = 200,
    rounds: int = 1,
) -> Dict:
    """Measure each pipeline in its own spawned process; the first one is the baseline for ratios.

    With rounds > 1 every pipeline is measured that many times, each time in a fresh process and
    in a rotated order, so a slow spell of the machine (other tenants, thermal limits) falls on
    all pipelines alike instead of on whichever ran then: close variants need this to be told
    apart at all.
    """
    for path in pipelines:
        if not Path(path, "config.cfg").exists():
            raise InvalidInput(f"{path} is not a saved spaCy pipeline (no config.cfg).")
    if rounds < 1 or repeats < 1:
        raise InvalidInput(f"--rounds and --repeats must be at least 1 (got {rounds} and {repeats}).")
    context = multiprocessing.get_context("spawn")
    args = (texts, batch_size, n_process, repeats, latency_docs)
    per_pipeline: Dict[int, List[Dict]] = {i: [] for i in range(len(pipelines))}
    for round_ in range(rounds):
        order = [(round_ + k) % len(pipelines) for k in range(len(pipelines))]
        for step, i in enumerate(order, 1):
            path = pipelines[i]
            logger.info(
                f"[round {round_ + 1}/{rounds}, {step}/{len(pipelines)}] {path}: {len(texts):,} texts x "
                f"{repeats} passes + {min(latency_docs, len(texts))} one by one"
            )
            payload = _measure_in_own_process(context, path, args)
            per_pipeline[i].append(payload)
            logger.info(f"    {payload['words_per_s']['median']:,.0f} words/s")
    results = [merge_rounds(per_pipeline[i]) for i in range(len(pipelines))]
    baseline = results[0]["words_per_s"]["median"]
    for result in results:
        result["speedup_vs_first"] = result["words_per_s"]["median"] / baseline
    return {"batch_size": batch_size, "n_process": n_process, "repeats": repeats, "rounds": rounds, "results": results}


def format_table(report: Dict) -> str:
    header = (
        "| pipeline | words/s (median, min-max) | x first | p50 / p95 ms (batch 1) | peak RSS MB | size MB | load s "
        "| bare session words/s | real wordpieces/s | pad share | pipeline / bare |"
    )
    lines = [header, "|" + "---|" * 11]
    for r in report["results"]:
        w = r["words_per_s"]
        lat = r["latency_ms_batch1"]
        bare = r.get("bare_session")
        lines.append(
            f"| {r['pipeline']} | {w['median']:.0f} ({w['min']:.0f}-{w['max']:.0f}) | {r['speedup_vs_first']:.1f} | "
            f"{lat['p50']:.1f} / {lat['p95']:.1f} | {r['peak_rss_mb']:.0f} | {r['size_on_disk_bytes'] / 1e6:.1f} | "
            f"{r['load_s']:.2f} | {bare['words_per_s']:.0f} | {bare['wordpieces_per_s']:.0f} | "
            f"{bare.get('pad_fraction', 0):.1%} | {bare['pipeline_share_of_bare']:.0%} |"
            if bare
            else f"| {r['pipeline']} | {w['median']:.0f} ({w['min']:.0f}-{w['max']:.0f}) | "
            f"{r['speedup_vs_first']:.1f} | "
            f"{lat['p50']:.1f} / {lat['p95']:.1f} | {r['peak_rss_mb']:.0f} | {r['size_on_disk_bytes'] / 1e6:.1f} | "
            f"{r['load_s']:.2f} | - | - | - | - |"
        )
    return "\n".join(lines)
