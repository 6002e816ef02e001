"""A real HTTP server on loopback that plays the Hugging Face and arXiv APIs from fixtures.

Each test scripts it: ``server.script(path_prefix, [Reply, ...])`` queues replies for
requests whose path (with query) starts with the prefix; the last reply repeats.
Every request is recorded (path, time) so tests can check pacing and paging.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
#: This engineer's loopback port range (tests bind the first free one).


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (timeouts)
    truncate_to: int | None = None  # send only this many bytes of a longer Content-Length
    content_type: str = "application/json"


class FixtureServer:
    def __init__(self):
        self.scripts: list[tuple[str, list[Reply]]] = []
        self.requests: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                reply = owner._next(self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    body = reply.body
                    if reply.truncate_to is not None:
                        body = body[: reply.truncate_to]
                        self.close_connection = True
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a port the OS picks
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def script(self, prefix: str, replies: list[Reply]) -> None:
        with self._lock:
            self.scripts.insert(0, (prefix, list(replies)))

    def _next(self, path: str) -> Reply:
        with self._lock:
            self.requests.append((path, time.monotonic()))
            for prefix, replies in self.scripts:
                if path.startswith(prefix):
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply(404, b'{"error": "not scripted"}')

    def close(self) -> None:
        if self.httpd is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        self.httpd = None
