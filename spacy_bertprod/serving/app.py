"""The HTTP service: FastAPI on uvicorn, one pipeline per worker process.

POST /v1/process   {"texts": [...], "vectors": false} → {"docs": [{"ents": [...], "cats": {...}}]}
POST /v1/embed     {"texts": [...], "normalize": true} → {"vectors": [[...]], "dim": N, "model": ...}
GET  /health       200 once the pipeline is loaded and warmed up, 503 before
GET  /metrics      Prometheus text
GET  /docs         the OpenAPI schema, browsable

The pipeline loads in the background when the app starts, so /health answers from the first
moment; /v1/process and /v1/embed answer 503 + Retry-After until it is ready. Both share one
micro-batcher, so embedding and annotating clients batch together. With API keys set
(access.py) every route but /health needs `Authorization: Bearer KEY`.
"""

import asyncio
import os
import time
from contextlib import asynccontextmanager
from typing import Awaitable, Callable, List, Optional

import numpy
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

try:  # orjson (in the serve extra) encodes the answers several times faster than json
    import orjson

    def answer_response(answer: dict) -> Response:
        return Response(orjson.dumps(answer), media_type="application/json")
except ImportError:  # pragma: no cover
    answer_response = JSONResponse

from . import schema
from .access import AccessMiddleware, drain_body
from .batching import MicroBatcher, QueueFull, ShuttingDown
from .loading import load_pipeline
from .metrics import ServiceMetrics
from .schema import ServiceError, doc_to_json, embeddings_to_json, parse_embed_request, parse_request
from .settings import ServeSettings

WARMUP_TEXTS = [
    "Warm-up text for the pipeline.",
    "A second, somewhat longer warm-up text, so two batch shapes are seen.",
]


def bertprod_transformers(nlp) -> list:
    from ..component import BertprodTransformer

    return [proc for _, proc in nlp.pipeline if isinstance(proc, BertprodTransformer)]


def model_name(nlp) -> str:
    meta = nlp.meta
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0.0.0')}"


# What one text in a micro-batch asks for (the batcher passes these through untouched).
DOC, DOC_WITH_VECTORS, EMBEDDING = "doc", "doc+vectors", "embedding"


class Service:
    """The loaded pipeline, its micro-batcher and its metrics."""

    def __init__(self, settings: ServeSettings, nlp=None):
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.nlp = nlp
        self.error: Optional[str] = None
        self.ready = False
        self.vectors = False
        self.sentence_vectors = False
        self.width = 0
        self.model = ""
        self.batcher = MicroBatcher(self._process, settings, self.metrics)
        self._loading: Optional[asyncio.Task] = None

    def _process(self, texts: List[str], wants: List[str]):
        docs = self.nlp.pipe(texts, batch_size=max(len(texts), 1))
        return [
            doc.vector if want == EMBEDDING else doc_to_json(doc, vectors=want == DOC_WITH_VECTORS)
            for doc, want in zip(docs, wants)
        ]

    def _load(self) -> None:
        if self.nlp is None:
            self.nlp = load_pipeline(self.settings.pipeline, self.settings.threads, self.settings.allow_spinning)
        if self.settings.warmup:
            list(self.nlp.pipe(WARMUP_TEXTS))
        transformers = bertprod_transformers(self.nlp)
        self.vectors = bool(transformers)
        self.sentence_vectors = any(proc.pooling.mode != "none" for proc in transformers)
        self.width = int(transformers[0].cfg.get("width", 0)) if transformers else 0
        self.model = model_name(self.nlp)

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

    def _check_ready(self) -> None:
        if self.error:
            raise ServiceError(503, f"The pipeline failed to load: {self.error}")
        if not self.ready:
            raise ServiceError(
                503, "The pipeline is still loading; retry shortly.", {"Retry-After": str(self.settings.retry_after_s)}
            )

    async def annotate(self, body: bytes) -> dict:
        self._check_ready()
        request = parse_request(body, self.settings)
        if request["vectors"] and not self.vectors:
            raise ServiceError(
                400,
                "This pipeline has no spacy_bertprod transformer, so it has no token vectors to return; send "
                '"vectors": false.',
            )
        return {"docs": await self._submit(request["texts"], DOC_WITH_VECTORS if request["vectors"] else DOC)}

    async def embed(self, body: bytes) -> dict:
        self._check_ready()
        request = parse_embed_request(body, self.settings)
        if not self.sentence_vectors:
            raise ServiceError(
                400,
                "This pipeline has no sentence vectors (no spacy_bertprod transformer, or its sentence_vector is "
                "'none'): serve an embedder (python -m spacy bertprod embedder) or a pipeline whose "
                "bertprod_transformer pools sentence vectors.",
            )
        vectors = await self._submit(request["texts"], EMBEDDING)
        rows = numpy.stack(vectors) if vectors else numpy.zeros((0, self.width), dtype="float32")
        return embeddings_to_json(rows, request["normalize"], request["encoding"], self.model)

    async def _submit(self, texts: List[str], want: str) -> list:
        try:
            return await self.batcher.submit(texts, want)
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


async def read_body(request: Request, settings: ServeSettings) -> bytes:
    """The body, refused early when too large (413) and cut off when it trickles in too slowly (408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServiceError(400, f"Content-Length {declared!r} is not a number.")
        if int(declared) > settings.max_body_bytes:
            # Read the rest (up to a cap) before answering: a client still sending its body when
            # the connection closes sees "connection reset", never the 413 and why.
            await drain_body(request.receive, settings.max_drain_bytes, settings.body_timeout_s)
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
                await drain_body(request.receive, settings.max_drain_bytes - size, settings.body_timeout_s)
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
    app.add_middleware(AccessMiddleware, settings=settings, metrics=service.metrics)

    async def answer(route: str, request: Request, handle: Callable[[bytes], Awaitable[dict]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            body = await read_body(request, settings)
            result = await handle(body)
            status = 200
            return answer_response(result)
        except ServiceError as err:
            status = err.status
            return error_response(err)
        except Exception as err:  # the pipeline itself failed on this batch
            return error_response(ServiceError(500, f"The pipeline failed: {type(err).__name__}: {err}"))
        finally:
            service.metrics.requests.labels(route=route, status=str(status)).inc()
            service.metrics.latency.labels(route=route).observe(time.perf_counter() - started)

    def documented(request_model, response_model):
        return dict(
            response_model=response_model,
            responses={code: error_doc for code in (400, 401, 408, 413, 422, 503)},
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request_model.model_json_schema()}},
                }
            },
        )

    @app.post("/v1/process", **documented(schema.ProcessRequest, schema.ProcessResponse))
    async def process(request: Request):
        """Annotate texts: entities (character offsets) and categories per text, in input order."""
        return await answer("process", request, service.annotate)

    @app.post("/v1/embed", **documented(schema.EmbedRequest, schema.EmbedResponse))
    async def embed(request: Request):
        """One sentence vector per text (the pipeline's doc.vector), in input order."""
        return await answer("embed", request, service.embed)

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
