"""Who may use the service: API keys (`Authorization: Bearer KEY`), checked before any body is read.

- /health stays open for load balancers and probes, /metrics too with `open_metrics`; every other
  route (the API, /docs, /openapi.json) needs one of the keys when any is set.
- Keys are compared in constant time (hmac.compare_digest against every key, no early exit) and
  never logged; refusals are counted (`bertprod_access_denied_total{reason}`) and logged with the
  client's address and the path.
- A refused request's body is read and discarded (up to max_drain_bytes) before the answer goes
  out, so a client still sending it receives the 401 (or 413) instead of a reset connection.
"""

import asyncio
import hmac
import json
import logging
from typing import Optional

from .metrics import ServiceMetrics
from .settings import ServeSettings

logger = logging.getLogger("spacy_bertprod.serve")
OPEN_PATHS = ("/health",)


async def drain_body(receive, max_bytes: int, timeout_s: float) -> bool:
    """Read and discard the rest of the request body, up to max_bytes or timeout_s; True when it ended."""

    async def read() -> bool:
        left = max_bytes
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
            if left < 0:
                return False

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        return False


class AccessMiddleware:
    """ASGI middleware: refuses requests without a valid API key (a no-op when no keys are set)."""

    def __init__(self, app, settings: ServeSettings, metrics: ServiceMetrics):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.keys = [key.encode("utf-8") for key in settings.api_keys]
        self.open_paths = OPEN_PATHS + (("/metrics",) if settings.open_metrics else ())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        reason = self.refusal(scope)
        if reason is None:
            return await self.app(scope, receive, send)
        self.metrics.access_denied.labels(reason=reason).inc()
        client = scope.get("client") or ("?", 0)
        logger.warning("401 (%s API key): %s %s from %s", reason, scope.get("method"), scope["path"], client[0])
        await drain_body(receive, self.settings.max_drain_bytes, self.settings.body_timeout_s)
        await send_error(send, 401, REFUSALS[reason], [(b"www-authenticate", b'Bearer realm="bertprod"')])

    def refusal(self, scope) -> Optional[str]:
        """None for a valid key, else why not ("missing" or "invalid")."""
        header = next((value for name, value in scope.get("headers", ()) if name == b"authorization"), None)
        if header is None:
            return "missing"
        scheme, _, token = header.partition(b" ")
        token = token.strip()
        matched = False
        for key in self.keys:  # every key, so the time does not say which one nearly matched
            matched |= hmac.compare_digest(token, key)
        return None if matched and scheme.lower() == b"bearer" else "invalid"


REFUSALS = {
    "missing": "This service needs an API key: send the header 'Authorization: Bearer YOUR_KEY'.",
    "invalid": "The API key is not valid for this service (header 'Authorization: Bearer YOUR_KEY').",
}


async def send_error(send, status: int, message: str, headers=()) -> None:
    body = json.dumps({"error": {"status": status, "message": message}}).encode("utf-8")
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": start_headers + list(headers)})
    await send({"type": "http.response.body", "body": body})
