"""Prometheus metrics of one service process (text exposition at GET /metrics).

Each app gets its own registry, so several apps in one process (tests) never share counters.
With --workers N every worker process counts its own requests, as Prometheus scrapes expect
per-process targets.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "bertprod_requests", "Requests by route (process, embed) and HTTP status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "bertprod_request_latency_seconds",
            "Time from request start to answer, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.access_denied = Counter(
            "bertprod_access_denied", "Requests refused with 401, by reason (missing, invalid)", ["reason"], registry=r
        )
        self.queue_wait = Histogram(
            "bertprod_queue_wait_seconds",
            "Time a request waited for its micro-batch to start",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "bertprod_batch_inference_seconds", "nlp.pipe time of one micro-batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_docs = Histogram("bertprod_batch_docs", "Texts per micro-batch", buckets=SIZE_BUCKETS, registry=r)
        self.batch_words = Histogram(
            "bertprod_batch_words", "Whitespace words per micro-batch", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "bertprod_batch_requests", "Requests merged into one micro-batch", buckets=SIZE_BUCKETS, registry=r
        )
        self.queue_texts = Gauge("bertprod_queue_texts", "Texts waiting for a micro-batch", registry=r)
        self.docs = Counter("bertprod_docs", "Texts annotated", registry=r)
        self.ready = Gauge("bertprod_ready", "1 once the pipeline is loaded and warmed up", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
