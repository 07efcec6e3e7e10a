"""The HTTP service: FastAPI on uvicorn, one pipeline per worker process.

POST /v1/process   {"texts": [...], "vectors": false} → {"docs": [{"ents": [...], "cats": {...}}]}
GET  /health       200 once the pipeline is loaded and warmed up, 503 before
GET  /metrics      Prometheus text
GET  /docs         the OpenAPI schema, browsable

The pipeline loads in the background when the app starts, so /health answers from the first
moment; /v1/process answers 503 + Retry-After until it is ready.
"""

import asyncio
import os
import time
from contextlib import asynccontextmanager
from typing import List, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

try:  # orjson (in the serve extra) encodes the answers several times faster than json
    import orjson

    def answer_response(answer: dict) -> Response:
        return Response(orjson.dumps(answer), media_type="application/json")
except ImportError:  # pragma: no cover
    answer_response = JSONResponse

from . import schema
from .batching import MicroBatcher, QueueFull, ShuttingDown
from .loading import load_pipeline
from .metrics import ServiceMetrics
from .schema import ServiceError, docs_to_json, parse_request
from .settings import ServeSettings

WARMUP_TEXTS = [
    "Warm-up text for the pipeline.",
    "A second, somewhat longer warm-up text, so two batch shapes are seen.",
]


def has_token_vectors(nlp) -> bool:
    from ..component import BertprodTransformer

    return any(isinstance(proc, BertprodTransformer) for _, proc in nlp.pipeline)


class Service:
    """The loaded pipeline, its micro-batcher and its metrics."""

    def __init__(self, settings: ServeSettings, nlp=None):
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.nlp = nlp
        self.error: Optional[str] = None
        self.ready = False
        self.vectors = False
        self.batcher = MicroBatcher(self._process, settings, self.metrics)
        self._loading: Optional[asyncio.Task] = None

    def _process(self, texts: List[str], vectors: List[bool]):
        docs = self.nlp.pipe(texts, batch_size=max(len(texts), 1))
        return docs_to_json(list(docs), vectors)

    def _load(self) -> None:
        if self.nlp is None:
            self.nlp = load_pipeline(self.settings.pipeline, self.settings.threads, self.settings.allow_spinning)
        if self.settings.warmup:
            list(self.nlp.pipe(WARMUP_TEXTS))
        self.vectors = has_token_vectors(self.nlp)

    async def start(self) -> None:
        self.batcher.start()

        async def load():
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._load)
            except Exception as err:  # reported by /health and /v1/process, and in the log
                self.error = f"{type(err).__name__}: {err}"
                print(f"bertprod serve: could not load {self.settings.pipeline!r}: {self.error}", flush=True)
                return
            self.ready = True
            self.metrics.ready.set(1)

        self._loading = asyncio.get_running_loop().create_task(load())

    async def stop(self) -> None:
        if self._loading is not None:
            await self._loading
        await self.batcher.close()

    async def annotate(self, body: bytes) -> dict:
        if self.error:
            raise ServiceError(503, f"The pipeline failed to load: {self.error}")
        if not self.ready:
            raise ServiceError(
                503, "The pipeline is still loading; retry shortly.", {"Retry-After": str(self.settings.retry_after_s)}
            )
        request = parse_request(body, self.settings)
        if request["vectors"] and not self.vectors:
            raise ServiceError(
                400,
                "This pipeline has no spacy_bertprod transformer, so it has no token vectors to return; send "
                '"vectors": false.',
            )
        try:
            docs = await self.batcher.submit(request["texts"], request["vectors"])
        except QueueFull:
            raise ServiceError(
                503,
                f"The service is at capacity ({self.settings.max_queue_texts} texts queued); retry after "
                f"{self.settings.retry_after_s} s.",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        except ShuttingDown:
            raise ServiceError(
                503,
                "The service is shutting down; retry on another instance.",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        return {"docs": docs}


async def read_body(request: Request, settings: ServeSettings) -> bytes:
    """The body, refused early when too large (413) and cut off when it trickles in too slowly (408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServiceError(400, f"Content-Length {declared!r} is not a number.")
        if int(declared) > settings.max_body_bytes:
            raise ServiceError(
                413,
                f"The body is {int(declared)} bytes; the limit is {settings.max_body_bytes}. Send fewer or shorter "
                "texts per request.",
            )
    chunks, size = [], 0

    async def receive_all() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise ServiceError(
                    413,
                    f"The body is over the limit of {settings.max_body_bytes} bytes. Send fewer or shorter texts per "
                    "request.",
                )
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive_all(), timeout=settings.body_timeout_s)
    except asyncio.TimeoutError:
        raise ServiceError(408, f"The body did not arrive within {settings.body_timeout_s:g} s.")
    return b"".join(chunks)


def error_response(err: ServiceError) -> JSONResponse:
    return JSONResponse(err.to_json(), status_code=err.status, headers=err.headers)


def create_app(settings: ServeSettings, nlp=None) -> FastAPI:
    """The ASGI app. `nlp` (an already loaded pipeline) is for tests; otherwise `settings.pipeline` is loaded."""
    service = Service(settings, nlp)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        yield
        await service.stop()

    app = FastAPI(
        title="spacy_bertprod",
        summary=f"spaCy pipeline {settings.pipeline or '(in-process)'} with dynamic micro-batching",
        lifespan=lifespan,
    )
    app.state.service = service
    error_doc = {"model": schema.ErrorResponse}

    @app.post(
        "/v1/process",
        response_model=schema.ProcessResponse,
        responses={code: error_doc for code in (400, 408, 413, 422, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema.ProcessRequest.model_json_schema()}},
            }
        },
    )
    async def process(request: Request):
        """Annotate texts: entities (character offsets) and categories per text, in input order."""
        started = time.perf_counter()
        status = 500
        try:
            body = await read_body(request, settings)
            answer = await service.annotate(body)
            status = 200
            return answer_response(answer)
        except ServiceError as err:
            status = err.status
            return error_response(err)
        except Exception as err:  # the pipeline itself failed on this batch
            return error_response(ServiceError(500, f"The pipeline failed: {type(err).__name__}: {err}"))
        finally:
            service.metrics.requests.labels(status=str(status)).inc()
            service.metrics.latency.observe(time.perf_counter() - started)

    @app.get("/health")
    async def health():
        """200 when the pipeline is loaded and warmed up; 503 while loading or after a failed load."""
        if service.ready:
            return {"status": "ready", "pipeline": settings.pipeline, "pid": os.getpid()}
        status = "failed: " + service.error if service.error else "loading"
        return JSONResponse({"status": status}, status_code=503, headers={"Retry-After": str(settings.retry_after_s)})

    @app.get("/metrics")
    async def metrics():
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    return app


def create_app_from_env() -> FastAPI:
    """uvicorn's factory for worker processes (`--workers N`)."""
    return create_app(ServeSettings.from_env())
