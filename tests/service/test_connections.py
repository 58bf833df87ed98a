"""One client cannot stall the server: headers are bounded in size and time, a body must
arrive in time, and half-open connections cannot use up the file descriptors
(service/protocol.py, service/middleware.py; the real server in a subprocess)."""

import contextlib
import socket
import threading
import time

import httpx
import pytest

from tests.service.conftest import Server


@pytest.fixture(scope="module")
def guarded(model_dir):
    server = Server(
        model_dir,
        max_header_bytes="8192",
        header_timeout_s="1",
        body_timeout_s="1",
        max_connections="40",
    )
    yield server
    server.stop()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_a_huge_header_is_431_at_once_and_others_are_not_held_up(guarded):
    sock = connect(guarded)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX: ")
    started = time.monotonic()
    health = []

    def honest():
        for _ in range(20):
            t = time.monotonic()
            assert httpx.get(f"{guarded.url}/health", timeout=5).status_code == 200
            health.append(time.monotonic() - t)

    thread = threading.Thread(target=honest)
    thread.start()
    try:
        for _ in range(100):  # 10 MB, in 100 KB pieces, unless the server hangs up first
            sock.sendall(b"a" * 100_000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = answer(sock)
    thread.join()
    assert reply.startswith(b"HTTP/1.1 431") and b"over 8192 bytes" in reply
    assert time.monotonic() - started < 3
    assert max(health) < 0.5


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (b"", None),  # connected, said nothing
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", b"408"),  # headers never finished
        (b'POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"text": ', b"408"),
    ],
    ids=["silent", "half headers", "half body"],
)
def test_a_client_that_stops_half_way_is_answered_and_closed_in_time(guarded, sent, status):
    sock = connect(guarded)
    sock.sendall(sent)
    started = time.monotonic()
    reply = answer(sock)
    waited = time.monotonic() - started
    assert 0.8 < waited < 3, waited
    if status is not None:
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:100]
        assert b"connection: close" in reply.lower()


def test_half_open_connections_past_the_limit_make_room_for_honest_ones(guarded):
    idle = [connect(guarded) for _ in range(60)]  # the limit is 40
    for sock in idle:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
    time.sleep(0.3)
    assert httpx.get(f"{guarded.url}/health", timeout=5).status_code == 200
    closed = 0
    for sock in idle:
        sock.settimeout(0.05)
        with contextlib.suppress(TimeoutError):
            closed += sock.recv(100).startswith(b"HTTP/1.1 408")
        sock.close()
    assert closed >= 20  # the oldest made room for the newest (and for /health)
