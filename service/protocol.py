"""HTTP/1.1 connections with the limits uvicorn's httptools protocol lacks.

One client must not be able to stall the others. Before this guard a 100 MB header was
parsed on the event loop (httptools appends each header chunk to the last, so the work
grows with the square of the size: 7.5 s during which /health waited), and a connection
that sent half a request, or nothing, held its file descriptor for ever.

:class:`GuardedHttpToolsProtocol` (what ``textcnn serve`` runs) therefore

- answers 431 and closes once a request's line and headers pass ``max_header_bytes``,
  feeding the parser no more than that;
- answers 408 and closes when the headers are not complete within ``header_timeout_s`` of
  the connection opening or of the request's first byte (idle keep-alive connections are
  closed by uvicorn's own keep-alive timeout);
- past ``max_connections`` open connections, closes the oldest one that is still waiting
  for its headers (no request of it is running) to make room, or refuses the new one.

The body's deadline (408 after ``body_timeout_s``) is kept by :mod:`service.middleware`,
which reads every body before the app sees it.
"""

from __future__ import annotations

import logging
import resource

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Settings, get_settings

log = logging.getLogger("textcnn.service")
RESERVED_DESCRIPTORS = 256  # files, sockets and pipes beside the connections


def raise_descriptor_limit(settings: Settings) -> int:
    """Raise this process's open-file limit towards ``max_connections`` (up to the hard
    limit) and return the connections it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = settings.max_connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    allowed = settings.max_connections
    if soft != resource.RLIM_INFINITY and soft - RESERVED_DESCRIPTORS < allowed:
        allowed = max(1, soft - RESERVED_DESCRIPTORS)
        log.warning(
            "open-file limit %d: at most %d connections (TEXTCNN_MAX_CONNECTIONS=%d)",
            soft,
            allowed,
            settings.max_connections,
        )
    return allowed


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with header size, header time and connection limits."""

    max_connections: int | None = None  # set once per process, from the settings

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        if GuardedHttpToolsProtocol.max_connections is None:
            GuardedHttpToolsProtocol.max_connections = raise_descriptor_limit(settings)
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout = settings.header_timeout_s
        self.reading_headers = True  # the next bytes belong to a request line or headers
        self.header_bytes = 0
        self.header_timer = None
        self.opened = self.loop.time()

    # -- connections ------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        full = len(self.connections) >= self.max_connections
        super().connection_made(transport)
        if full and not self._evict_one_waiting():
            log.warning("%d connections open: refusing a new one", len(self.connections))
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _idle_for_headers(self) -> bool:
        """Waiting for a request's headers, with no request of this connection running."""
        return self.reading_headers and (self.cycle is None or self.cycle.response_complete)

    def _evict_one_waiting(self) -> bool:
        waiting = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c._idle_for_headers()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.opened)
        oldest._refuse(408, "request headers not received in time: closed to make room")
        return True

    # -- the header phase -------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self.reading_headers:
            super().data_received(data)
            return
        if self.header_timer is None:  # a new request on a kept-alive connection
            self._arm_header_timer()
        room = self.max_header_bytes - self.header_bytes
        self.header_bytes += min(len(data), room)
        if len(data) <= room:
            super().data_received(data)
            return
        super().data_received(data[:room])  # may complete the headers
        if self.transport.is_closing():
            return
        if self.reading_headers:
            self._refuse(431, f"request line and headers over {self.max_header_bytes} bytes")
        else:
            super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers, self.header_bytes = True, 0  # then the next request's

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self.header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_late(self) -> None:
        self.header_timer = None
        if self.reading_headers and not self.transport.is_closing():
            self._refuse(408, f"request headers not received within {self.header_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` (JSON, as every error) and close."""
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        body = ('{"detail": "' + message + '"}').encode()
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: application/json\r\n"
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()
