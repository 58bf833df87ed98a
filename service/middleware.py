"""The service's one ASGI middleware: every body read whole within its limits before the app
sees it, security headers on every response, metrics of every request, and an answer (500)
instead of a dropped connection when something fails unexpectedly."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi.responses import JSONResponse

from .metrics import Metrics

log = logging.getLogger("textcnn.service")

# On every response unless the route sets its own (the page and the docs do): nothing of
# it may run as a page, be framed, or be sniffed into another type.
SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}


class TooLarge(Exception):
    pass


class ServiceMiddleware:
    """Pure ASGI (no per-request task or stream as BaseHTTPMiddleware makes).

    A body over ``max_body_bytes`` is a 413 (by its Content-Length before any byte is read,
    else as it arrives, chunked or not); a body not complete within ``body_timeout_s`` of
    the headers a 408 that closes the connection, so a client that stops half way holds
    nothing for long."""

    def __init__(self, app, max_body_bytes: int, body_timeout_s: float, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout_s
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": None}

        async def send_secured(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                given = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS.items() if k not in given]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self._with_body(scope, receive, send_secured)
        except Exception:  # answered here, so that the server never drops the connection
            log.exception("unhandled error on %s", scope.get("path"))
            if status["code"] is None:
                await error(send_secured, 500, "internal error; see the server log")
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            code = str(status["code"] or 500)  # a response that never started failed
            model = scope.get("textcnn.model", "")  # set by the routes that ask a model
            self.metrics.requests.labels(path, model, code).inc()
            self.metrics.latency.labels(path, model).observe(time.perf_counter() - started)

    async def _with_body(self, scope, receive, send) -> None:
        """The app, given the whole body at once; 413 or 408 when it cannot be had."""
        limit = self.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await error(send, 413, f"request body over {limit} bytes", close=True)
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await _read_body(receive, limit)
        except TooLarge:
            await error(send, 413, f"request body over {limit} bytes", close=True)
            return
        except TimeoutError:
            detail = f"request body not received within {self.body_timeout:g} s"
            await error(send, 408, detail, close=True)
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_body(receive, limit: int) -> bytes:
    """The whole request body; :class:`TooLarge` once it passes ``limit`` bytes."""
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def error(send, status: int, detail: str, close: bool = False) -> None:
    """``{"detail": ...}`` with ``status``; ``close`` ends the connection after it (the rest
    of an unread body is never read)."""
    headers = {"connection": "close"} if close else None
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response({"type": "http"}, None, send)
