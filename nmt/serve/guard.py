"""What stands between the network and the routes: body size limit and read timeout,
API keys, one JSON access-log line per request, request metrics, JSON error bodies."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from pathlib import Path

from nmt.errors import NmtError
from nmt.serve.models import ApiError

access_log = logging.getLogger("nmt.serve.access")

# routes whose metrics get their own label; anything else is counted as "other"
ROUTES = {"/v1/translate", "/v1/models", "/v1/languages", "/translate", "/languages", "/health", "/metrics",
          "/openapi.json", "/", "/detect", "/translate_file", "/frontend/settings"}
# open without an API key: load balancers and scrapers must reach them
PUBLIC = {"/health", "/metrics"}


def json_response_parts(status: int, message: str, headers: dict | None = None):
    body = json.dumps({"error": message}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    return [{"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": body}]


def load_api_keys(path) -> frozenset:
    """One key per line (blank lines and # comments ignored)."""
    if path is None:
        return frozenset()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NmtError(f"cannot read the API key file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise NmtError(f"the API key file {path} is not UTF-8 text (byte {exc.start}); write one key per "
                       "line") from None
    keys = frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if not keys:
        raise NmtError(f"the API key file {path} has no key in it")
    return keys


class ApiKeys:
    def __init__(self, keys: frozenset):
        self.keys = keys

    def check(self, headers, body_key: str | None = None) -> None:
        """Accept ``Authorization: Bearer KEY``, ``X-API-Key: KEY`` or (LibreTranslate) ``api_key`` in the body."""
        if not self.keys:
            return
        given = body_key
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = headers.get("x-api-key", given)
        if not given:
            raise ApiError(403, "an API key is required (Authorization: Bearer KEY, X-API-Key, or api_key)")
        if not any(hmac.compare_digest(given.encode(), key.encode()) for key in self.keys):
            raise ApiError(403, "invalid API key")


class Guard:
    """Pure ASGI middleware around the FastAPI app.

    A request body must arrive within ``body_timeout_s`` (else 408), and a body still arriving
    when the server is told to stop (``stopping()``) is answered 503 at once: a half-sent request
    neither holds a connection forever nor delays a shutdown. ``larger``: path -> its own body
    limit (file uploads)."""

    def __init__(self, app, metrics, max_body_bytes: int, body_timeout_s: float = 10.0, larger: dict | None = None):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.larger = larger or {}
        self._stopping: asyncio.Event | None = None

    def stopping(self) -> None:
        """Called (in the event loop's thread) when the server begins its shutdown."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        self._stopping.set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in ROUTES else "other"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id = uuid.uuid4().hex[:16]
        status = 500

        async def send_logged(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": list(message.get("headers", [])) +
                           [(b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            body = await self._read_body(receive, self.larger.get(scope["path"], self.max_body_bytes))
            if isinstance(body, tuple):  # too large, too slow or cut by a shutdown: refused before parsing
                reason, code, text = body
                self.metrics.rejected.labels(reason).inc()
                state["error"] = text
                for message in json_response_parts(code, text, {"connection": "close"}):
                    await send_logged(message)
                return
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_logged)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            client = scope.get("client") or ("", 0)
            record = {"ts": round(time.time(), 3), "request_id": request_id, "client": client[0],
                      "method": scope["method"], "path": scope["path"], "status": status,
                      "ms": round(elapsed * 1000, 1)}
            for key in ("model", "source", "target", "lines", "error"):
                if key in state:
                    record[key] = state[key]
            access_log.info(json.dumps(record, ensure_ascii=False))

    async def _read_body(self, receive, limit: int):
        """The body, or (metric reason, status, message) when it is refused."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        chunks, size = [], 0
        while True:
            message = await self._receive_before(receive, deadline)
            if message is None:
                if self._stopping.is_set():
                    return "shutting_down", 503, "the server is shutting down; the request body was not complete"
                return "body_timeout", 408, f"the request body did not arrive within {self.body_timeout_s:g} s"
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return "body_too_large", 413, f"request body larger than {limit} bytes"
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _receive_before(self, receive, deadline: float):
        """The next message, or None when the deadline passes or the server starts stopping first."""
        loop = asyncio.get_running_loop()
        incoming = asyncio.ensure_future(receive())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({incoming, stop}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if incoming in done:
            return incoming.result()
        incoming.cancel()
        return None
