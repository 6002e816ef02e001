"""Signed, expiring tokens for links in emails (itsdangerous).

Each purpose has its own salt, so a token made for one purpose ("rate") is
rejected by another ("unsubscribe") even with the same payload and key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

#: Purposes and how long their links stay valid, in seconds.
PURPOSES = {
    "confirm-email": 7 * 24 * 3600,
    "reset-password": 2 * 3600,
    "rate": 30 * 24 * 3600,
    "unsubscribe": 365 * 24 * 3600,
    "device": 365 * 24 * 3600,  # a browser that logged in (recommender.accounts)
}


class TokenError(ValueError):
    """A link that cannot be used. ``reason`` is ``"expired"`` or ``"invalid"``."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@lru_cache(maxsize=32)
def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    """One serializer per key and purpose (a digest run signs tens of thousands of links)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key, salt=f"paperfeed/{purpose}")


def make_token(secret_key: str, purpose: str, payload: Any) -> str:
    """Sign ``payload`` (JSON-serialisable) for ``purpose``."""
    return _serializer(secret_key, purpose).dumps(payload)


def read_token(secret_key: str, purpose: str, token: str, *, max_age: int | None = None) -> Any:
    """The payload of a valid token, or :class:`TokenError` saying why not."""
    age = PURPOSES[purpose] if max_age is None else max_age
    try:
        return _serializer(secret_key, purpose).loads(token, max_age=age)
    except SignatureExpired:
        raise TokenError("expired", "This link has expired. Ask for a new one.") from None
    except BadSignature:
        raise TokenError(
            "invalid", "This link is not valid: it may have been cut short or altered."
        ) from None
