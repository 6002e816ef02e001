"""A polite HTTP GET: a timeout, a pause between requests, retries with backoff.

The standard library's :mod:`urllib` is enough here: the sources are two GET
endpoints, and what matters (pacing, ``Retry-After``, which failures to retry)
is policy that no HTTP library decides for us; it keeps the product free of
another dependency.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth asking again: rate limited, or the server is briefly unwell.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "paperfeed/0.1 (personal paper recommender; polite fetcher)"


class FetchError(RuntimeError):
    """A source could not be fetched; ``str()`` says which URL and why."""


class Malformed(ValueError):
    """A response arrived whole but is not what the source sends (permanent)."""


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

    A request that times out, loses its connection, comes back truncated or
    unparseable, or answers 429/5xx is retried up to ``retries`` times, waiting
    ``Retry-After`` when the server says (at most ``max_wait``), else
    ``backoff * 2**n`` seconds. Other HTTP errors (404, 400) fail at once.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 2.0,
        max_wait: float = 120.0,
        min_interval: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.min_interval = min_interval
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
                request = urllib.request.Request(
                    url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
                )
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = response.read()
                return parse(body)
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in RETRY_STATUSES:
                    raise FetchError(f"{url}: {problem}") from None
                told = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                if told is not None:
                    wait = told
            except Malformed as exc:
                raise FetchError(f"{url}: {exc}") from None
            except ValueError as exc:  # truncated or garbled body: ask again
                problem = f"unreadable response ({exc})"
            except TimeoutError:
                problem = f"no answer within {self.timeout:g} s"
            except http.client.IncompleteRead as exc:
                problem = f"connection closed after {len(exc.partial)} bytes (truncated)"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"cannot connect ({reason})"
            if attempt < self.retries:
                self.sleep(min(wait, self.max_wait))
        raise FetchError(f"{url}: {problem} (gave up after {self.retries + 1} attempts)")


def utc_now() -> datetime:
    return datetime.now(UTC)
