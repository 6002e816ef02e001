"""Source fetches are bounded (issue 20, item 2): a deadline for the whole request, a cap
on the response's size, redirects within the same host only. Real servers on loopback:
one that trickles a byte a second, one that sends without end, one that redirects away."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from recommender import sources, store
from recommender.sources.http import PoliteClient

from .conftest import snapshot

DAY = "2026-11-30"


class RawServer:
    """A loopback TCP server whose every connection runs ``behaviour(conn)``."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sent = 0  # body bytes written, all connections
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            conn.recv(65536)  # the request
            self.behaviour(self, conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def trickle_body(server, conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Content-Length: 400\r\n\r\n")
    for _ in range(400):
        if server.stop.is_set():
            return
        conn.sendall(b" ")
        server.sent += 1
        time.sleep(1)


def trickle_headers(server, conn):
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:
        if server.stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(1)


def endless_body(server, conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
    block = b'{"title": "x"},' * 4096
    while server.sent < 1024**3 and not server.stop.is_set():  # up to 1 GB
        conn.sendall(block)
        server.sent += len(block)


def declared_huge(server, conn):
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n["
    )
    while server.sent < 1024**3 and not server.stop.is_set():
        conn.sendall(b" " * 65536)
        server.sent += 65536


@pytest.fixture
def serve(monkeypatch):
    made = []

    def start(behaviour):
        server = RawServer(behaviour)
        made.append(server)
        monkeypatch.setenv("PAPERFEED_HF_API_URL", server.url)
        return server

    monkeypatch.setenv("PAPERFEED_FETCH_TIMEOUT", "2")
    monkeypatch.setenv("PAPERFEED_FETCH_RETRIES", "1")
    monkeypatch.setenv("PAPERFEED_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERFEED_FETCH_MAX_MB", "1")
    yield start
    for server in made:
        server.close()


@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_server_sending_a_byte_a_second_is_cut_at_the_whole_request_deadline(
    serve, db, behaviour
):
    server = serve(behaviour)
    before = snapshot(db)
    started = time.monotonic()
    with pytest.raises(sources.FetchError) as failure:
        sources.fetch_source_day(db, "hf-daily", DAY)
    took = time.monotonic() - started
    # two tries of at most 2 s each (and a 10 ms pause), not 400 s of trickle
    assert took < 8, took
    assert "no complete answer within 2 s (the whole-request limit" in str(failure.value)
    assert "PAPERFEED_FETCH_TIMEOUT" in str(failure.value)
    assert server.connections == 2
    assert snapshot(db) | {"fetches": []} == before | {"fetches": []}
    assert store.get_fetch(db, "hf-daily", DAY)["state"] == "failed"


def test_a_response_without_end_is_cut_at_the_size_cap_and_not_retried(serve, db):
    server = serve(endless_body)
    with pytest.raises(sources.FetchError) as failure:
        sources.fetch_source_day(db, "hf-daily", DAY)
    assert "larger than the limit of 1 MB (PAPERFEED_FETCH_MAX_MB)" in str(failure.value)
    assert server.connections == 1  # a permanent failure: not asked again
    time.sleep(0.2)
    assert server.sent < 64 * 1024**2  # it stopped reading long before 1 GB


def test_a_declared_huge_response_is_refused_before_its_body_is_read(serve, db):
    serve(declared_huge)
    with pytest.raises(sources.FetchError, match=r"1,073,741,824 bytes, over the limit of 1 MB"):
        sources.fetch_source_day(db, "hf-daily", DAY)


def test_redirects_are_followed_within_the_host_only(serve, db):
    def elsewhere(server, conn):
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://evil.example/x\r\n")
        conn.sendall(b"Content-Length: 0\r\n\r\n")

    serve(elsewhere)
    with pytest.raises(sources.FetchError, match=r"redirected to another host \(evil.example\)"):
        sources.fetch_source_day(db, "hf-daily", DAY)


def test_a_same_host_redirect_is_followed():
    def target(server, conn):
        request_line = server.last
        if b"/moved" in request_line:
            conn.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /here\r\nContent-Length: 0\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")

    class Recording(RawServer):
        def _handle(self, conn):
            try:
                self.last = conn.recv(65536)
                self.behaviour(self, conn)
            finally:
                conn.close()

    server = Recording(target)
    try:
        assert PoliteClient(timeout=2).get(server.url + "/moved", bytes) == b"[]"
        assert server.connections == 2
    finally:
        server.close()


def test_json_nested_too_deeply_fails_with_one_clear_line(serve, db):
    body = b"[" * 200_000 + b"]" * 200_000

    def deep(server, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    serve(deep)
    with pytest.raises(sources.FetchError, match="nested too deeply"):
        sources.fetch_source_day(db, "hf-daily", DAY)
