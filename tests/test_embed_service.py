"""POST /v1/embed, API keys, TLS, refusals a client can read, and the Python client."""

import asyncio
import base64
import json
import logging
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy
import pytest
import spacy
from test_serving import Server, metric

from spacy_bertprod.client import AsyncClient, Client, ServiceError
from spacy_bertprod.serving.app import create_app
from spacy_bertprod.serving.server import api_keys_from, check_tls
from spacy_bertprod.serving.settings import ServeSettings

from conftest import TEXTS

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "second-key-0123456789abcdef"
SENTENCES = [t for t in TEXTS if t.strip()] + ["why was my card declined", "Erin moved to Lisbon"]


@pytest.fixture(scope="module")
def int8(compressed_bert):
    return spacy.load(compressed_bert["int8"])


def in_process(nlp, texts):
    return numpy.stack([d.vector for d in nlp.pipe(texts)])


def embed(url, texts, **extra):
    return httpx.post(url + "/v1/embed", json={"texts": texts, **extra}, timeout=60)


def test_embed_gives_the_in_process_vectors_in_every_encoding(int8):
    expected = in_process(int8, SENTENCES)
    unit = expected / numpy.linalg.norm(expected, axis=1, keepdims=True)
    with Server(create_app(ServeSettings(pipeline="int8"), nlp=int8)) as server:
        plain = embed(server.url, SENTENCES).json()
        assert plain["dim"] == expected.shape[1] and plain["encoding"] == "float" and plain["model"]
        numpy.testing.assert_allclose(plain["vectors"], unit, atol=1e-6)
        raw = embed(server.url, SENTENCES, normalize=False, encoding="base64").json()
        decoded = numpy.stack([numpy.frombuffer(base64.b64decode(v), "<f4") for v in raw["vectors"]])
        numpy.testing.assert_array_equal(decoded, expected)
        small = embed(server.url, SENTENCES, encoding="int8").json()
        rows = [numpy.frombuffer(base64.b64decode(v), "int8") * s for v, s in zip(small["vectors"], small["scales"])]
        numpy.testing.assert_allclose(numpy.stack(rows), unit, atol=max(small["scales"]) / 2 + 1e-7)
        assert embed(server.url, []).json()["vectors"] == []
        assert metric(server.url, 'bertprod_requests_total{route="embed",status="200"}') == 4


def test_32_concurrent_clients_get_the_in_process_vectors(int8):
    texts = SENTENCES * 8
    expected = in_process(int8, texts)
    with Server(create_app(ServeSettings(pipeline="int8"), nlp=int8)) as server:
        client = Client(server.url, batch_texts=8)
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda _: client.embed(texts, normalize=False), range(32)))
        client.close()
    for got in results:
        numpy.testing.assert_array_equal(got, expected)


HOSTILE_EMBED = [
    (b"{", 400, "not valid JSON"),
    (b'{"texts": "one"}', 422, "must be a list of strings"),
    (b'{"texts": [1]}', 422, "texts[0] is int"),
    (b'{"texts": ["a"], "normalise": true}', 422, "Unknown field(s) ['normalise']"),
    (b'{"texts": ["a"], "normalize": "yes"}', 422, "'normalize' must be true or false"),
    (b'{"texts": ["a"], "encoding": "fp16"}', 422, "'encoding' must be one of"),
    (b'{"texts": ["' + b"x" * 600 + b'"]}', 413, "has 600 characters"),
    (b'{"texts": ["\\ud800"]}', 422, "unpaired surrogate"),
    (b"[" * 100_000, 400, "JSON"),
]


def test_hostile_embed_requests_get_clear_errors(int8, compressed_bert):
    settings = ServeSettings(pipeline="int8", max_texts=10, max_chars=500, max_body_bytes=200_000)
    with Server(create_app(settings, nlp=int8)) as server:
        for body, status, fragment in HOSTILE_EMBED:
            response = httpx.post(server.url + "/v1/embed", content=body)
            assert response.status_code == status, (body[:30], response.text)
            assert fragment in response.json()["error"]["message"]
        assert embed(server.url, ["a"] * 11).status_code == 413
        assert embed(server.url, ["Alice flew to Paris"]).status_code == 200
    no_vectors = spacy.load(
        compressed_bert["int8"], config={"components": {"transformer": {"sentence_vector": "none"}}}
    )
    with Server(create_app(ServeSettings(pipeline="none"), nlp=no_vectors)) as server:
        refused = embed(server.url, ["Alice"])
        assert refused.status_code == 400 and "no sentence vectors" in refused.json()["error"]["message"]


def test_a_40_mb_body_sent_with_urllib_receives_its_413(int8):
    body = json.dumps({"texts": ["word " * 1000] * 8000}).encode()
    assert len(body) > 40_000_000
    with Server(create_app(ServeSettings(pipeline="int8"), nlp=int8)) as server:
        for path in ("/v1/process", "/v1/embed"):
            request = urllib.request.Request(server.url + path, data=body, headers={"content-type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert refused.value.code == 413
            assert "the limit is 2097152" in json.loads(refused.value.read())["error"]["message"]
        assert embed(server.url, ["still serving"]).status_code == 200


def test_api_keys_guard_every_route_but_health(int8, caplog):
    settings = ServeSettings(pipeline="int8", api_keys=[KEY, OTHER_KEY])
    keyed = {"authorization": f"Bearer {KEY}"}
    with Server(create_app(settings, nlp=int8)) as server:
        assert httpx.get(server.url + "/health").status_code == 200
        stop = threading.Event()

        def keyed_client():
            answers = []
            while not stop.is_set():
                answers.append(httpx.post(server.url + "/v1/embed", json={"texts": ["a b"]}, headers=keyed).status_code)
            return answers

        with ThreadPoolExecutor(2) as pool, caplog.at_level(logging.WARNING, "spacy_bertprod.serve"):
            served = pool.submit(keyed_client)
            for route, method in [
                ("/v1/process", "post"),
                ("/v1/embed", "post"),
                ("/metrics", "get"),
                ("/docs", "get"),
            ]:
                for headers in ({}, {"authorization": "Bearer wrong-key-0123456789"}, {"authorization": KEY}):
                    response = getattr(httpx, method)(server.url + route, headers=headers, **_body(method))
                    assert response.status_code == 401, (route, headers)
                    assert "API key" in response.json()["error"]["message"]
                    assert response.headers["www-authenticate"].startswith("Bearer")
            big = httpx.post(server.url + "/v1/process", content=b"x" * 5_000_000)
            assert big.status_code == 401
            stop.set()
            assert set(served.result()) == {200}
        assert KEY not in caplog.text and "401 (missing API key)" in caplog.text
        other = {"authorization": f"Bearer {OTHER_KEY}"}
        assert httpx.post(server.url + "/v1/process", json={"texts": ["Alice"]}, headers=other).status_code == 200
        metrics = httpx.get(server.url + "/metrics", headers=keyed).text
        assert 'bertprod_access_denied_total{reason="missing"} 5.0' in metrics
        assert 'bertprod_access_denied_total{reason="invalid"} 8.0' in metrics
    with Server(create_app(ServeSettings(pipeline="int8", api_keys=[KEY], open_metrics=True), nlp=int8)) as server:
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.post(server.url + "/v1/embed", json={"texts": ["a"]}).status_code == 401


def _body(method):
    return {"json": {"texts": ["Alice"]}} if method == "post" else {}


def test_key_and_tls_settings_are_checked_before_start(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="at least 16 characters"):
        ServeSettings(api_keys=["short"])
    monkeypatch.setenv("BERTPROD_KEYS", f"{KEY}, {OTHER_KEY}")
    assert api_keys_from([], "BERTPROD_KEYS") == [KEY, OTHER_KEY]
    with pytest.raises(ValueError, match="NO_SUCH_VAR is not set"):
        api_keys_from([], "NO_SUCH_VAR")
    assert KEY not in repr(ServeSettings(api_keys=[KEY]))
    with pytest.raises(ValueError, match="both --ssl-certfile and --ssl-keyfile"):
        check_tls(tmp_path / "cert.pem", None)
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(ValueError, match="Cannot use"):
        check_tls(tmp_path / "cert.pem", tmp_path / "key.pem")


def self_signed(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test's self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_with_a_self_signed_certificate(int8, tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    tls = check_tls(cert, key)
    context = ssl.create_default_context(cafile=str(cert))
    app = create_app(ServeSettings(pipeline="int8", api_keys=[KEY]), nlp=int8)
    with Server(app, verify=context, **tls) as server:
        url = server.url
        assert url.startswith("https://")
        with Client(url, api_key=KEY, verify=context) as client:
            numpy.testing.assert_array_equal(client.embed(SENTENCES, normalize=False), in_process(int8, SENTENCES))
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health")  # not trusted without the certificate


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted behaviour: a status (with Retry-After for
    503), 'drop' (close without answering) or 'ok' (a /v1/embed answer for the texts sent)."""

    script: list = []
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Scripted.seen.append((self.path, len(body["texts"]), self.headers.get("authorization")))
        step = Scripted.script.pop(0) if Scripted.script else "ok"
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if step == "ok":
            vectors = [base64.b64encode(numpy.full(3, len(t), "<f4").tobytes()).decode() for t in body["texts"]]
            self._send(200, {"vectors": vectors, "dim": 3, "model": "scripted", "encoding": "base64"})
            return
        self._send(step, {"error": {"status": step, "message": f"scripted {step}"}}, {"Retry-After": "0"})

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Scripted.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_client_retries_503_and_dropped_connections_and_raises_on_4xx(scripted):
    texts = [f"text {'x' * i}" for i in range(10)]
    Scripted.script = [503, "drop", "ok", 503]
    with Client(scripted, api_key=KEY, batch_texts=4) as client:
        vectors = client.embed(texts)
    assert vectors[:, 0].tolist() == [len(t) for t in texts]  # every text once, in order
    assert [n for _, n, _ in Scripted.seen] == [4, 4, 4, 4, 4, 2]
    assert {auth for _, _, auth in Scripted.seen} == {f"Bearer {KEY}"}
    for status in (401, 413):
        Scripted.script = [status]
        with Client(scripted) as client, pytest.raises(ServiceError, match=f"{status}: scripted {status}") as err:
            client.embed(["a"])
        assert err.value.status == status
    Scripted.script = [503] * 10
    with Client(scripted, max_retries=2) as client, pytest.raises(ServiceError, match="503"):
        client.embed(["a"])
    with Client(scripted) as client, pytest.raises(TypeError, match="list of strings"):
        client.embed("one text")


def test_async_client_keeps_order_with_requests_in_flight(scripted):
    texts = [f"t{'y' * i}" for i in range(25)]
    Scripted.script = ["drop", 503]

    async def run():
        async with AsyncClient(scripted, batch_texts=3, max_concurrency=4) as client:
            return await client.embed(texts)

    vectors = asyncio.run(run())
    assert vectors[:, 0].tolist() == [len(t) for t in texts]


def test_loadtest_measures_embed_with_a_key_and_checks_vectors(int8, compressed_bert):
    from spacy_bertprod.measure.loadtest import loadtest

    texts = SENTENCES * 4
    with Server(create_app(ServeSettings(pipeline="int8", api_keys=[KEY]), nlp=int8)) as server:
        result = loadtest(
            server.url,
            texts,
            concurrency=8,
            texts_per_request=4,
            pipeline=str(compressed_bert["int8"]),
            endpoint="embed",
            api_key=KEY,
        )
        refused = loadtest(server.url, texts[:4], concurrency=1, texts_per_request=4, endpoint="embed")
    assert result["errors"] == 0 and result["texts_per_s"] > 0
    assert result["agreement"] == {"docs": len(texts), "identical_vectors": 1.0}
    assert refused["statuses"] == {"401": 1}
