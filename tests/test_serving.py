"""`bertprod serve`: answers equal in-process ones, concurrent requests are micro-batched, and
hostile clients get the right 4xx/503 while everyone else is still served.

The service runs on a real uvicorn server on a free loopback port (in a thread, or as the CLI
in a subprocess), so limits, timeouts and shutdown are those of the deployed server.
"""

import json
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import spacy
from spacy.language import Language

from spacy_bertprod.serving.app import create_app
from spacy_bertprod.serving.settings import ServeSettings

from conftest import TEXTS

uvicorn = pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@Language.component("test_sleep_per_doc")
def sleep_per_doc(doc):
    time.sleep(doc._.get("sleep") if doc.has_extension("sleep") else 0.05)
    return doc


class Server:
    """A uvicorn server for `app` in a background thread, ready when entered."""

    def __init__(self, app, verify=True, **config):
        self.port = free_port()
        self.url = f"{'https' if 'ssl_certfile' in config else 'http'}://127.0.0.1:{self.port}"
        self.verify = verify
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=20, **config
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/health", verify=self.verify).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the service did not become ready")

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __exit__(self, *exc):
        self.stop()


def process(url, texts, **extra):
    return httpx.post(url + "/v1/process", json={"texts": texts, **extra}, timeout=60)


def metric(url, name) -> float:
    text = httpx.get(url + "/metrics").text
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def expected(nlp, texts):
    return [([(e.start_char, e.end_char, e.label_) for e in d.ents], d.cats) for d in nlp.pipe(texts)]


def answered(docs):
    return [([(e["start"], e["end"], e["label"]) for e in d["ents"]], d["cats"]) for d in docs]


def test_answers_equal_in_process_pipeline_in_input_order(compressed_bert):
    nlp = spacy.load(compressed_bert["fp32"])
    with Server(create_app(ServeSettings(pipeline="fp32"), nlp=spacy.load(compressed_bert["fp32"]))) as server:
        response = process(server.url, TEXTS)
        assert response.status_code == 200
        got = answered(response.json()["docs"])
        for (ents, cats), (ents_ref, cats_ref) in zip(got, expected(nlp, TEXTS)):
            assert ents == ents_ref
            assert cats.keys() == cats_ref.keys()
            assert all(abs(cats[k] - cats_ref[k]) < 1e-5 for k in cats)
        for doc, text in zip(response.json()["docs"], TEXTS):
            for ent in doc["ents"]:
                assert text[ent["start"] : ent["end"]] == ent["text"]
        assert process(server.url, []).json() == {"docs": []}
        with_vectors = process(server.url, ["Alice flew to Paris"], vectors=True).json()["docs"][0]
        assert [t["text"] for t in with_vectors["tokens"]] == ["Alice", "flew", "to", "Paris"]
        assert len(with_vectors["vectors"]) == 4 and len(with_vectors["vectors"][0]) == 32
        assert any(abs(x) > 0 for x in with_vectors["vectors"][0])


def test_concurrent_requests_are_micro_batched_and_int8_answers_do_not_depend_on_batch_mates(compressed_bert):
    nlp = spacy.load(compressed_bert["int8"])
    texts = [
        f"{name} flew to {place} with Carol"
        for name in ("Alice", "Bob", "Dave")
        for place in ("Paris", "Tokyo", "Lisbon", "Madrid")
    ] * 2
    settings = ServeSettings(pipeline="int8", max_wait_ms=200)
    with Server(create_app(settings, nlp=spacy.load(compressed_bert["int8"]))) as server:
        with ThreadPoolExecutor(len(texts)) as pool:
            responses = list(pool.map(lambda t: process(server.url, [t]), texts))
        assert all(r.status_code == 200 for r in responses)
        batches = metric(server.url, "bertprod_batch_requests_count")
        assert batches < len(texts)  # several requests shared a batch
        assert metric(server.url, "bertprod_batch_requests_sum") == len(texts)
        assert metric(server.url, 'bertprod_requests_total{route="process",status="200"}') == len(texts)
    alone = {t: expected(nlp, [t])[0] for t in set(texts)}
    for text, response in zip(texts, responses):
        assert answered(response.json()["docs"])[0] == alone[text]  # calibrated int8: exactly equal


HOSTILE = [
    (b"x" * 20_000, 413, "limit is 10000"),
    (json.dumps({"texts": ["a"] * 10_000}).encode(), 413, "limit"),  # also over the body limit
    (b'{"texts": ["unclosed', 400, "not valid JSON"),
    (b'{"texts": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    (b'["a list"]', 422, "JSON object"),
    (b'{"text": "singular"}', 422, "Unknown field"),
    (b'{"texts": "one string"}', 422, "list of strings"),
    (b'{"texts": ["ok", 7]}', 422, "texts[1] is int"),
    (b'{"texts": ["ok"], "vectors": "yes"}', 422, "'vectors' must be true or false"),
    (json.dumps({"texts": ["y" * 600]}).encode(), 413, "texts[0] has 600 characters"),
    (b'{"texts": ["\\ud800"]}', 422, "unpaired surrogate"),
]


def test_hostile_requests_get_clear_4xx_and_the_service_keeps_serving(compressed_bert):
    settings = ServeSettings(pipeline="int8", max_body_bytes=10_000, max_texts=100, max_chars=500)
    with Server(create_app(settings, nlp=spacy.load(compressed_bert["int8"]))) as server:
        for body, status, fragment in HOSTILE:
            response = httpx.post(
                server.url + "/v1/process", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == status, (body[:40], response.text)
            assert fragment in response.json()["error"]["message"], response.text
        too_many = process(server.url, ["a"] * 101)
        assert too_many.status_code == 413 and "101 texts" in too_many.json()["error"]["message"]
        assert process(server.url, ["Alice flew to Paris"]).status_code == 200
        assert metric(server.url, 'bertprod_requests_total{route="process",status="413"}') == 4


def test_a_slow_body_gets_408_while_other_clients_are_served(compressed_bert):
    settings = ServeSettings(pipeline="int8", body_timeout_s=1.0)
    with Server(create_app(settings, nlp=spacy.load(compressed_bert["int8"]))) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(
            b"POST /v1/process HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            b'200\r\n\r\n{"texts"'
        )
        started = time.time()
        assert process(server.url, ["Bob works in Berlin"]).status_code == 200  # not blocked by the trickler
        slow.settimeout(10)
        reply = slow.recv(4096).decode()
        slow.close()
        assert reply.startswith("HTTP/1.1 408"), reply
        assert "did not arrive within 1 s" in reply
        assert time.time() - started < 5


def test_a_burst_beyond_the_queue_gets_503_with_retry_after(compressed_bert):
    nlp = spacy.load(compressed_bert["int8"])
    nlp.add_pipe("test_sleep_per_doc", last=True)
    settings = ServeSettings(pipeline="int8", max_queue_texts=4, max_wait_ms=1, retry_after_s=2)
    with Server(create_app(settings, nlp=nlp)) as server:
        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(lambda i: process(server.url, [f"text number {i}"]), range(30)))
        statuses = sorted({r.status_code for r in responses})
        assert statuses == [200, 503], statuses
        refused = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "2" and "at capacity" in r.json()["error"]["message"] for r in refused)
        assert process(server.url, ["after the burst"]).status_code == 200


def test_shutdown_finishes_in_flight_requests(compressed_bert):
    nlp = spacy.load(compressed_bert["int8"])
    nlp.add_pipe("test_sleep_per_doc", last=True)
    server = Server(create_app(ServeSettings(pipeline="int8"), nlp=nlp)).__enter__()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(process, server.url, [f"slow text {i}" for i in range(20)])  # ~1 s of work
        time.sleep(0.3)
        server.stop()
        response = pending.result(timeout=30)
    assert response.status_code == 200 and len(response.json()["docs"]) == 20


def test_health_and_process_report_a_pipeline_that_failed_to_load(tmp_path):
    missing = str(tmp_path / "no-such-pipeline")
    app = create_app(ServeSettings(pipeline=missing, warmup=False))
    server = Server(app)
    server.thread.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                health = httpx.get(server.url + "/health")
                if "failed" in health.json()["status"]:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        assert health.status_code == 503 and "no-such-pipeline" in health.json()["status"]
        answer = process(server.url, ["hi"])
        assert answer.status_code == 503 and "failed to load" in answer.json()["error"]["message"]
    finally:
        server.stop()


def test_serve_refuses_a_missing_pipeline_or_a_bad_port_before_starting(compressed_bert, tmp_path):
    """The CLI says what is wrong and exits 1; no server starts (it would only fail in its workers)."""
    cases = (
        ([str(tmp_path / "no-such-pipeline")], "neither a folder nor an installed package"),
        ([str(compressed_bert["int8"]), "--port", "99999"], "--port must be a TCP port in 1..65535"),
    )
    for args, message in cases:
        run = subprocess.run(
            [sys.executable, "-m", "spacy", "bertprod", "serve", *args], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 1 and message in run.stdout + run.stderr
        assert "Uvicorn running" not in run.stdout + run.stderr


def test_openapi_documents_the_request_and_response_schema(compressed_bert):
    app = create_app(ServeSettings(pipeline="int8"), nlp=spacy.load(compressed_bert["int8"]))
    schema = app.openapi()
    operation = schema["paths"]["/v1/process"]["post"]
    assert "texts" in json.dumps(operation["requestBody"])
    assert {"200", "413", "503"} <= set(operation["responses"])


def test_serve_cli_with_two_workers_serves_and_stops_cleanly(compressed_bert):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spacy",
            "bertprod",
            "serve",
            str(compressed_bert["int8"]),
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, ready = time.time() + 120, False
        while time.time() < deadline and not ready:
            try:
                ready = httpx.get(url + "/health").status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready, "service did not start"
        pids = set()
        for _ in range(20):
            with httpx.Client() as fresh:  # new connections, so either worker may answer
                answer = fresh.post(url + "/v1/process", json={"texts": ["Alice flew to Paris"]})
                while answer.status_code == 503 and time.time() < deadline:  # that worker is still loading
                    assert "still loading" in answer.json()["error"]["message"] and "retry-after" in answer.headers
                    time.sleep(0.2)
                    answer = fresh.post(url + "/v1/process", json={"texts": ["Alice flew to Paris"]})
                assert answer.status_code == 200
                pids.add(fresh.get(url + "/health").json().get("pid"))
        assert proc.pid not in pids  # answered by worker processes (each with its own pipeline), not the supervisor
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_loadtest_reports_latency_throughput_and_agreement_with_in_process(compressed_bert, tmp_path):
    from spacy_bertprod.measure.loadtest import loadtest

    texts = [f"{name} flew to {place}" for name in ("Alice", "Bob", "Grace") for place in ("Paris", "Tokyo")] * 5
    with Server(create_app(ServeSettings(pipeline="int8"), nlp=spacy.load(compressed_bert["int8"]))) as server:
        result = loadtest(
            server.url, texts, concurrency=8, texts_per_request=2, repeats=2, pipeline=str(compressed_bert["int8"])
        )
    assert result["statuses"] == {"200": 30} and result["errors"] == 0
    assert result["words_per_s"] > 0 and result["in_process_words_per_s"] > 0
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert result["agreement"] == {"docs": 30, "same_ents": 1.0, "same_top_cat": 1.0, "max_cat_score_gap": 0.0}
    with pytest.raises(ValueError, match="plain HTTP"):
        loadtest("https://example.invalid", texts)
