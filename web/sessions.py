"""Signed cookie sessions that are re-issued when they change or once an hour.

Flask re-signs and re-sends a permanent session's cookie on every response
(``SESSION_REFRESH_EACH_REQUEST``) so that its lifetime rolls forward. That is
one HMAC, one JSON dump and a ``Set-Cookie`` header per request, for a cookie
that usually says the same thing. This interface keeps the rolling lifetime
but refreshes an unchanged cookie only when it was issued more than
:data:`REFRESH_AFTER` ago: a session still expires after
``PERMANENT_SESSION_LIFETIME`` without use, give or take that hour. It also
keeps the signing serializer while the secret key stays the same, where Flask
builds a new one for every request.
"""

from __future__ import annotations

import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

#: An unchanged session cookie is re-issued when it is older than this (seconds).
REFRESH_AFTER = 3600
#: Flash messages a session keeps until a page shows them, newest last; and the most text
#: they may hold in all. A client that never follows the redirects after its POSTs would
#: otherwise grow the cookie until every request is refused (431).
MAX_FLASHES = 5
MAX_FLASH_CHARS = 1500


class RollingSession(SecureCookieSession):
    #: When the cookie this session came from was signed (Unix time); None for a new one.
    issued_at: float | None = None


class HourlyRefreshSessionInterface(SecureCookieSessionInterface):
    session_class = RollingSession

    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's serializer, made once per secret key instead of on every request."""
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = self._serializer = (keys, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> RollingSession | None:
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, issued = signer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.issued_at = issued.timestamp()
        return session

    def should_set_cookie(self, app: Flask, session: RollingSession) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        return session.issued_at is None or time.time() - session.issued_at > REFRESH_AFTER

    def save_session(self, app: Flask, session: RollingSession, response) -> None:
        cap_flashes(session)
        super().save_session(app, session, response)


def cap_flashes(session: RollingSession) -> None:
    """Keep the newest :data:`MAX_FLASHES` queued messages, within
    :data:`MAX_FLASH_CHARS` (the newest one alone is cut to fit)."""
    flashes = session.get("_flashes")
    if not flashes:
        return
    kept, chars = [], 0
    for category, message in reversed(flashes[-MAX_FLASHES:]):
        if kept and chars + len(message) > MAX_FLASH_CHARS:
            break
        kept.append((category, message[:MAX_FLASH_CHARS]))
        chars += len(message)
    kept.reverse()
    if kept != [tuple(f) for f in flashes]:
        session["_flashes"] = kept
