"""`bertprod loadtest`: many concurrent clients against a running service, and the same texts
through in-process `nlp.pipe` for comparison (speed, and whether the answers are the same).

A measurement, not a test: it reports latency percentiles, requests/s, words/s, texts/s and
errors by status, and with --pipeline the in-process speed and the share of docs whose entities
(and top category) equal the in-process ones; with --endpoint embed, whose vectors are identical
to the in-process doc.vector.
"""

import asyncio
import base64
import json
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ..errors import InvalidInput


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def words(texts: Sequence[str]) -> int:
    return sum(len(t.split()) for t in texts)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    The load generator shares the machine with the service, so it must cost as little CPU as
    possible: general-purpose clients (httpx) spend more CPU per request than the service does
    and would measure themselves.
    """

    def __init__(self, host: str, port: int, path: str, api_key: str = ""):
        self.host, self.port, self.path = host, port, path
        self.auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        self.reader = self.writer = None

    async def post(self, body: bytes) -> Tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"{self.auth}Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the service closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def _request_body(chunk: List[str], endpoint: str) -> bytes:
    payload = {"texts": chunk, "normalize": False, "encoding": "base64"} if endpoint == "embed" else {"texts": chunk}
    return json.dumps(payload).encode("utf8")


def _answers_of(payload: bytes, endpoint: str) -> list:
    answer = json.loads(payload)
    if endpoint == "embed":
        return [base64.b64decode(v) for v in answer["vectors"]]
    return answer["docs"]


async def _run_clients(
    url: str, chunks: List[List[str]], concurrency: int, timeout_s: float, endpoint: str, api_key: str
) -> Dict[str, Any]:
    parsed = urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise InvalidInput(f"loadtest speaks plain HTTP: give a URL like http://127.0.0.1:8000, not {url!r}.")
    latencies: List[float] = []
    statuses: Dict[str, int] = {}
    answers: Dict[int, List[dict]] = {}
    next_chunk = iter(range(len(chunks)))
    bodies = [_request_body(chunk, endpoint) for chunk in chunks]

    async def client() -> None:
        connection = _Connection(parsed.hostname, parsed.port or 80, parsed.path, api_key)
        for index in next_chunk:
            started = time.perf_counter()
            try:
                code, payload = await asyncio.wait_for(connection.post(bodies[index]), timeout_s)
                status = str(code)
                if code == 200:
                    answers[index] = _answers_of(payload, endpoint)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as err:
                status = type(err).__name__
                await connection.close()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "statuses": statuses, "answers": answers, "seconds": elapsed}


def in_process(
    pipeline: str, texts: List[str], batch_size: int, passes: int = 3, endpoint: str = "process"
) -> Dict[str, Any]:
    """The same texts through `nlp.pipe` in this process (after a warm-up): median words/s of
    `passes` passes, and the answers (doc.vector's float32 bytes for embed)."""
    import spacy

    from ..serving.schema import doc_to_json

    nlp = spacy.load(pipeline)
    list(nlp.pipe(texts[:batch_size], batch_size=batch_size))
    timings = []
    for _ in range(passes):
        started = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        timings.append(time.perf_counter() - started)
    seconds = statistics.median(timings)
    if endpoint == "embed":
        answers = [d.vector.astype("<f4").tobytes() for d in docs]
    else:
        answers = [doc_to_json(d) for d in docs]
    return {"seconds": seconds, "words_per_s": words(texts) / seconds, "answers": answers}


def vector_agreement(served: List[bytes], local: List[bytes]) -> Dict[str, Any]:
    """Share of texts whose served vector is bit-identical to the in-process one."""
    same = sum(a == b for a, b in zip(served, local))
    return {"docs": len(local), "identical_vectors": same / max(len(local), 1)}


def agreement(served: List[dict], local: List[dict]) -> Dict[str, Any]:
    """Share of docs with identical entities, and with the same top category, plus the largest score gap."""

    def ents(doc):
        return [(e["start"], e["end"], e["label"]) for e in doc["ents"]]

    same_ents = sum(ents(a) == ents(b) for a, b in zip(served, local))
    with_cats = [(a["cats"], b["cats"]) for a, b in zip(served, local) if b["cats"]]
    same_top = sum(max(a, key=a.get) == max(b, key=b.get) for a, b in with_cats)
    gap = max((abs(a[k] - b[k]) for a, b in with_cats for k in b), default=0.0)
    return {
        "docs": len(local),
        "same_ents": same_ents / max(len(local), 1),
        "same_top_cat": same_top / len(with_cats) if with_cats else None,
        "max_cat_score_gap": gap,
    }


def loadtest(
    url: str,
    texts: List[str],
    *,
    concurrency: int = 32,
    texts_per_request: int = 1,
    repeats: int = 1,
    pipeline: Optional[str] = None,
    batch_size: int = 64,
    timeout_s: float = 60.0,
    endpoint: str = "process",
    api_key: str = "",
) -> Dict[str, Any]:
    if concurrency < 1 or texts_per_request < 1 or repeats < 1:
        raise InvalidInput("--concurrency, --texts-per-request and --repeats must be at least 1.")
    if endpoint not in ("process", "embed"):
        raise InvalidInput(f"--endpoint must be process or embed, not {endpoint!r}.")
    url = url.rstrip("/")
    if not url.endswith(f"/v1/{endpoint}"):
        url += f"/v1/{endpoint}"
    chunks = [texts[i : i + texts_per_request] for i in range(0, len(texts), texts_per_request)] * repeats
    run = asyncio.run(_run_clients(url, chunks, concurrency, timeout_s, endpoint, api_key))
    ok_texts = [t for i, answer in run["answers"].items() for t in chunks[i]]
    latencies = run["latencies"]
    result: Dict[str, Any] = {
        "url": url,
        "concurrency": concurrency,
        "texts_per_request": texts_per_request,
        "requests": len(chunks),
        "statuses": run["statuses"],
        "errors": sum(n for s, n in run["statuses"].items() if s != "200"),
        "server_errors_5xx": sum(n for s, n in run["statuses"].items() if s.startswith("5")),
        "seconds": run["seconds"],
        "requests_per_s": len(chunks) / run["seconds"],
        "words_per_s": words(ok_texts) / run["seconds"],
        "texts_per_s": len(ok_texts) / run["seconds"],
        "latency_ms": {
            name: (percentile(latencies, q) or 0.0) * 1000 for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "latency_ms_mean": statistics.mean(latencies) * 1000 if latencies else None,
    }
    if pipeline:
        local = in_process(pipeline, texts, batch_size, endpoint=endpoint)
        result["in_process_words_per_s"] = local["words_per_s"]
        result["in_process_texts_per_s"] = len(texts) / local["seconds"]
        result["service_vs_in_process"] = result["words_per_s"] / local["words_per_s"]
        first_pass = {i: a for i, a in run["answers"].items() if i < len(chunks) // repeats}
        served = [doc for i in sorted(first_pass) for doc in first_pass[i]]
        expected = [
            doc
            for i in sorted(first_pass)
            for doc in local["answers"][i * texts_per_request : (i + 1) * texts_per_request]
        ]
        result["agreement"] = (vector_agreement if endpoint == "embed" else agreement)(served, expected)
    return result
