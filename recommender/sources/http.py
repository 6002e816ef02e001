"""A polite HTTP GET: a deadline, a size cap, a pause between requests, retries with backoff.

The standard library's :mod:`http.client` is enough here: the sources are two GET
endpoints, and what matters (pacing, ``Retry-After``, which failures to retry, how long
and how large one answer may be, where a redirect may lead) is policy that no HTTP
library decides for us; it keeps the product free of another dependency. ``urllib``
was used before, but its timeout bounds each socket read, not the request: a server
sending one byte a second held a fetch for ever, and a 1 GB answer was read whole.

Each request is bounded three ways: ``timeout`` seconds for the whole request (connect,
headers and body: a watchdog shuts the socket when the time is up), ``max_bytes`` of
body (refused at once from ``Content-Length``, else as soon as more arrives), and
redirects only to the same host (at most :data:`MAX_REDIRECTS`).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth asking again: rate limited, or the server is briefly unwell.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "paperfeed/0.1 (personal paper recommender; polite fetcher)"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class FetchError(RuntimeError):
    """A source could not be fetched; ``str()`` says which URL and why."""


class Malformed(ValueError):
    """A response arrived whole but is not what the source sends (permanent)."""


class _HTTPStatus(Exception):
    def __init__(self, code: int, reason: str, headers: http.client.HTTPMessage):
        self.code, self.reason, self.headers = code, reason, headers


class _Deadline(Exception):
    """The whole request took longer than the client's ``timeout``."""


class _Refused(Exception):
    """Permanent: a limit the answer breaks (size, redirect); the message names it."""


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class PoliteClient:
    """GETs one URL at a time, at most one request every ``min_interval`` seconds.

    A request that takes longer than ``timeout`` seconds in all, loses its connection,
    comes back truncated or unparseable, or answers 429/5xx is retried up to ``retries``
    times, waiting ``Retry-After`` when the server says (at most ``max_wait``), else
    ``backoff * 2**n`` seconds. Other HTTP errors (404, 400), a body over ``max_bytes``
    and a redirect to another host fail at once.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 2.0,
        max_wait: float = 120.0,
        min_interval: float = 0.0,
        max_bytes: int = 50 * 1024 * 1024,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.min_interval = min_interval
        self.max_bytes = max_bytes
        self.sleep = sleep
        self.requests = 0
        self._last: float | None = None

    def _pace(self) -> None:
        if self._last is not None and self.min_interval > 0:
            wait = self.min_interval - (time.monotonic() - self._last)
            if wait > 0:
                self.sleep(wait)
        self._last = time.monotonic()

    def get(self, url: str, parse: Callable[[bytes], T]) -> T:
        """The parsed body of ``url``; raises :class:`FetchError` once retries run out."""
        problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                log.info("fetch: %s: %s; retry %d of %d", url, problem, attempt, self.retries)
            self._pace()
            self.requests += 1
            wait = self.backoff * 2**attempt
            try:
                return parse(self._fetch(url))
            except _HTTPStatus as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in RETRY_STATUSES:
                    raise FetchError(f"{url}: {problem}") from None
                told = retry_after(exc.headers.get("Retry-After"))
                if told is not None:
                    wait = told
            except (Malformed, _Refused) as exc:
                raise FetchError(f"{url}: {exc}") from None
            except RecursionError:
                raise FetchError(f"{url}: the response is nested too deeply to read") from None
            except ValueError as exc:  # truncated or garbled body: ask again
                problem = f"unreadable response ({exc})"
            except _Deadline:
                problem = (
                    f"no complete answer within {self.timeout:g} s "
                    "(the whole-request limit, PAPERFEED_FETCH_TIMEOUT)"
                )
            except TimeoutError:
                problem = f"no answer within {self.timeout:g} s"
            except http.client.IncompleteRead as exc:
                problem = f"connection closed after {len(exc.partial)} bytes (truncated)"
            except (http.client.HTTPException, OSError) as exc:
                problem = f"cannot connect ({getattr(exc, 'strerror', None) or exc})"
            if attempt < self.retries:
                self.sleep(min(wait, self.max_wait))
        raise FetchError(f"{url}: {problem} (gave up after {self.retries + 1} attempts)")

    def _fetch(self, url: str) -> bytes:
        """The body of ``url`` after same-host redirects, within the deadline and size cap."""
        deadline = time.monotonic() + self.timeout
        origin = urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            status, reason, headers, body = self._request(url, deadline)
            if status in REDIRECT_STATUSES and headers.get("Location"):
                target = urljoin(url, headers["Location"])
                parts = urlsplit(target)
                if parts.scheme not in ("http", "https") or parts.hostname != origin.hostname:
                    raise _Refused(
                        f"redirected to another host ({parts.hostname or repr(target)}): "
                        "only redirects within the same host are followed"
                    )
                url = target
                continue
            if not 200 <= status < 300:
                raise _HTTPStatus(status, reason, headers)
            return body
        raise _Refused(f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, deadline: float):
        parts = urlsplit(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=remaining, context=ssl.create_default_context()
            )
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=remaining)
        else:
            raise _Refused(f"not an http(s) URL: {url!r}")
        expired = threading.Event()

        def cut() -> None:  # wakes a read blocked on a server that trickles bytes
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(remaining, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(
                "GET", path, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            )
            response = conn.getresponse()
            if response.status in REDIRECT_STATUSES or not 200 <= response.status < 300:
                return response.status, response.reason, response.headers, b""
            return response.status, response.reason, response.headers, self._body(response)
        except Exception:
            if expired.is_set():
                raise _Deadline from None
            raise
        finally:
            watchdog.cancel()
            conn.close()

    def _body(self, response: http.client.HTTPResponse) -> bytes:
        limit = f"{self.max_bytes / 2**20:g} MB (PAPERFEED_FETCH_MAX_MB)"
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise _Refused(f"the response is {int(declared):,} bytes, over the limit of {limit}")
        chunks, size = [], 0
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise _Refused(f"the response is larger than the limit of {limit}")
            chunks.append(chunk)
        if response.length:  # http.client returns short reads quietly: a cut connection
            raise http.client.IncompleteRead(b"".join(chunks), response.length)
        return b"".join(chunks)


def utc_now() -> datetime:
    return datetime.now(UTC)
