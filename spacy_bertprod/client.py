"""A client for `bertprod serve`: sentence vectors and annotations in two lines.

    from spacy_bertprod.client import Client
    vectors = Client("http://host:8000", api_key=KEY).embed(texts)   # numpy (len(texts), dim)

Long lists are split into requests (`batch_texts` texts, at most `max_request_bytes` of JSON
each) and the answers come back in input order. A 503 (loading, at capacity, shutting down) is
retried after its Retry-After, and a dropped connection after a short backoff, both at most
`max_retries` times and never waiting longer than `max_wait_s` at once; the endpoints are pure
functions of the texts, so a retried request cannot do anything twice. Every other 4xx/5xx
raises `ServiceError` with the service's own message. `AsyncClient` is the same for asyncio, with
`max_concurrency` requests in flight.
"""

import asyncio
import base64
import json
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy

from .errors import InvalidInput, ServiceError

RETRY_STATUSES = (503,)


class _Common:
    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        batch_texts: int = 64,
        max_request_bytes: int = 1024 * 1024,
        max_retries: int = 5,
        max_wait_s: float = 30.0,
        verify: Any = True,
    ):
        if batch_texts < 1 or max_request_bytes < 1 or max_retries < 0:
            raise InvalidInput("batch_texts and max_request_bytes must be positive and max_retries not negative.")
        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self.timeout, self.verify = timeout, verify
        self.batch_texts, self.max_request_bytes = batch_texts, max_request_bytes
        self.max_retries, self.max_wait_s = max_retries, max_wait_s

    def _chunks(self, texts: Sequence[str]) -> Iterator[List[str]]:
        """Consecutive runs of texts within both limits (a text over the byte limit goes alone)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings (one string is one text: pass [text]).")
        chunk: List[str] = []
        size = 0
        for text in texts:
            text_bytes = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 1
            if chunk and (len(chunk) >= self.batch_texts or size + text_bytes > self.max_request_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(text)
            size += text_bytes
        if chunk:
            yield chunk

    def _wait(self, attempt: int, response=None, error: Optional[Exception] = None) -> float:
        """Seconds to wait before retry number `attempt`; raises when no retry is left."""
        if attempt > self.max_retries:
            if response is not None:
                raise _error_of(response)
            raise ServiceError(0, f"Could not reach {self.url} after {attempt} attempts: {error}")
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.replace(".", "", 1).isdigit():
                return min(float(after), self.max_wait_s)
        return min(0.25 * 2 ** (attempt - 1), self.max_wait_s)


def _error_of(response) -> ServiceError:
    try:
        message = response.json()["error"]["message"]
    except Exception:
        message = response.text[:500] or response.reason_phrase
    if response.status_code == 401:
        message += " (Client(..., api_key=...))"
    return ServiceError(response.status_code, message)


def _embed_body(texts: List[str], normalize: bool) -> Dict[str, Any]:
    return {"texts": texts, "normalize": normalize, "encoding": "base64"}


def _vectors_of(answer: Dict[str, Any]) -> numpy.ndarray:
    rows = [numpy.frombuffer(base64.b64decode(v), dtype="<f4") for v in answer["vectors"]]
    return numpy.stack(rows).astype("float32") if rows else numpy.zeros((0, answer["dim"]), dtype="float32")


class Client(_Common):
    """Synchronous client (httpx); use as a context manager or call close()."""

    def __init__(self, url: str, api_key: Optional[str] = None, **options):
        import httpx

        super().__init__(url, api_key, **options)
        self._http = httpx.Client(timeout=self.timeout, verify=self.verify)
        self._transport_errors = (httpx.TransportError,)

    def embed(self, texts: Sequence[str], normalize: bool = True) -> numpy.ndarray:
        """One float32 row per text, in order (POST /v1/embed)."""
        parts = [_vectors_of(self._post("/v1/embed", _embed_body(chunk, normalize))) for chunk in self._chunks(texts)]
        return numpy.concatenate(parts) if parts else numpy.zeros((0, 0), dtype="float32")

    def process(self, texts: Sequence[str], vectors: bool = False) -> List[Dict[str, Any]]:
        """One {"ents", "cats"[, "tokens", "vectors"]} dict per text, in order (POST /v1/process)."""
        docs: List[Dict[str, Any]] = []
        for chunk in self._chunks(texts):
            docs.extend(self._post("/v1/process", {"texts": chunk, "vectors": vectors})["docs"])
        return docs

    def _post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(self.url + path, content=content, headers=self.headers)
            except self._transport_errors as err:
                time.sleep(self._wait(attempt, error=err))
                continue
            if response.status_code == 200:
                return response.json()
            if response.status_code not in RETRY_STATUSES:
                raise _error_of(response)
            time.sleep(self._wait(attempt, response=response))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncClient(_Common):
    """asyncio client (httpx): up to `max_concurrency` requests of one call in flight at once."""

    def __init__(self, url: str, api_key: Optional[str] = None, *, max_concurrency: int = 4, **options):
        import httpx

        super().__init__(url, api_key, **options)
        if max_concurrency < 1:
            raise InvalidInput(f"max_concurrency must be at least 1, got {max_concurrency}.")
        self._http = httpx.AsyncClient(timeout=self.timeout, verify=self.verify)
        self._transport_errors = (httpx.TransportError,)
        self._slots = asyncio.Semaphore(max_concurrency)

    async def embed(self, texts: Sequence[str], normalize: bool = True) -> numpy.ndarray:
        bodies = [_embed_body(chunk, normalize) for chunk in self._chunks(texts)]
        answers = await asyncio.gather(*(self._post("/v1/embed", body) for body in bodies))
        parts = [_vectors_of(answer) for answer in answers]
        return numpy.concatenate(parts) if parts else numpy.zeros((0, 0), dtype="float32")

    async def process(self, texts: Sequence[str], vectors: bool = False) -> List[Dict[str, Any]]:
        bodies = [{"texts": chunk, "vectors": vectors} for chunk in self._chunks(texts)]
        answers = await asyncio.gather(*(self._post("/v1/process", body) for body in bodies))
        return [doc for answer in answers for doc in answer["docs"]]

    async def _post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempt = 0
        async with self._slots:
            while True:
                attempt += 1
                try:
                    response = await self._http.post(self.url + path, content=content, headers=self.headers)
                except self._transport_errors as err:
                    await asyncio.sleep(self._wait(attempt, error=err))
                    continue
                if response.status_code == 200:
                    return response.json()
                if response.status_code not in RETRY_STATUSES:
                    raise _error_of(response)
                await asyncio.sleep(self._wait(attempt, response=response))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
