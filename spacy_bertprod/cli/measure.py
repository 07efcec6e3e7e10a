"""What a pipeline costs: `benchmark` (speed, latency, memory, size), `compare-encoders` and
`profile-encoder` (the ONNX session alone), `loadtest` (the HTTP service under load)."""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import bertprod_cli, report_path, user_errors, write_report


@bertprod_cli.command("benchmark")
def benchmark_cli(
    pipelines: List[str] = typer.Argument(
        ..., help="Pipeline folders; the first is the baseline for the 'x first' column"
    ),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    n_process: int = typer.Option(1, "--n-process"),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes over the data (after a warm-up)"),
    rounds: int = typer.Option(
        1, "--rounds", help="Measure every pipeline this many times, in fresh processes, in rotated order"
    ),
    latency_docs: int = typer.Option(200, "--latency-docs", help="Docs timed one at a time for p50/p95 latency"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the full results as JSON"),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True, help="Deprecated: --report"),
):
    """Words/s, batch-1 latency, peak RSS, size and load time per pipeline, plus the bare ONNX session."""
    from ..measure.benchmark import format_table, run_benchmark
    from ..texts import read_texts

    report = report_path(report, old_output, "benchmark")
    with user_errors():
        texts = read_texts(data, limit)
        result = run_benchmark(
            pipelines,
            texts,
            batch_size=batch_size,
            n_process=n_process,
            repeats=repeats,
            latency_docs=latency_docs,
            rounds=rounds,
        )
    print(format_table(result))
    write_report(result, report, show=False)


@bertprod_cli.command("compare-encoders")
def compare_encoders_cli(
    entries: List[str] = typer.Argument(
        ..., help="PIPELINE, or LABEL=PIPELINE:PLANNER (PLANNER: cost, the component's own, or greedy)"
    ),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    rounds: int = typer.Option(7, "--rounds", help="Timed rounds; each times every entry once, in turn"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the results as JSON"),
):
    """A/B the bare ONNX encoders of several pipelines, interleaved in one process (fair on a drifting machine)."""
    from ..measure.encoder_timing import compare_encoders, format_comparison
    from ..texts import read_texts

    with user_errors(OSError):
        result = compare_encoders(entries, read_texts(data, limit), batch_size=batch_size, rounds=rounds)
    result["data"] = str(data)
    print(format_comparison(result))
    write_report(result, report, show=False)


@bertprod_cli.command("profile-encoder")
def profile_encoder_cli(
    pipeline: str = typer.Argument(..., help="A compressed (ONNX) pipeline folder or package"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the results as JSON"),
):
    """Where the ONNX encoder spends its time, per operator type (ONNX Runtime's profiler)."""
    from ..measure.encoder_timing import format_profile, profile_encoder
    from ..texts import read_texts

    with user_errors(OSError):
        result = profile_encoder(pipeline, read_texts(data, limit), batch_size=batch_size)
    print(format_profile(result))
    write_report(result, report, show=False)


@bertprod_cli.command("loadtest")
def loadtest_cli(
    url: str = typer.Argument(..., help="The service, e.g. http://127.0.0.1:8000"),
    data: Path = typer.Option(..., "--data", help="Texts: DOCS.spacy, TEXT.jsonl ('text' field) or one text per line"),
    concurrency: int = typer.Option(32, "--concurrency", "-c", help="Concurrent clients"),
    texts_per_request: int = typer.Option(1, "--texts-per-request"),
    repeats: int = typer.Option(1, "--repeats", help="Passes over the texts"),
    pipeline: Optional[str] = typer.Option(
        None,
        "--pipeline",
        help="Also run the texts through this pipeline in-process: speed ratio and same-answer share",
    ),
    limit: int = typer.Option(0, "--limit", help="Use only the first N texts (0: all)"),
    endpoint: str = typer.Option("process", "--endpoint", help="process (/v1/process) or embed (/v1/embed)"),
    api_key_env: str = typer.Option("", "--api-key-env", help="Environment variable holding the service's API key"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the results as JSON"),
    old_output: Optional[Path] = typer.Option(None, "--output", "-o", hidden=True, help="Deprecated: --report"),
):
    """Latency percentiles, requests/s, words/s and errors at N concurrent clients (vs in-process nlp.pipe)."""
    from ..measure.loadtest import loadtest
    from ..serving.server import api_keys_from
    from ..texts import read_texts

    report = report_path(report, old_output, "loadtest")
    with user_errors():
        result = loadtest(
            url,
            read_texts(data, limit),
            concurrency=concurrency,
            texts_per_request=texts_per_request,
            repeats=repeats,
            pipeline=pipeline,
            endpoint=endpoint,
            api_key=api_keys_from([], api_key_env)[0] if api_key_env else "",
        )
    write_report(result, report)
