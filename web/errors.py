"""Error pages: HTML for people, JSON for fetch() and ``.json`` URLs."""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, abort, jsonify, render_template, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from recommender import store

log = logging.getLogger(__name__)

#: The largest id SQLite can hold; a larger number in a URL names nothing (404).
MAX_ID = 2**63 - 1
#: Pages of a list beyond this are refused (400): nobody pages 200,000 results deep.
MAX_PAGE = 10_000
#: Seconds a client is told to wait when the database is locked or the disk is full.
RETRY_AFTER = 5

MESSAGES = {
    400: "The request could not be understood.",
    401: "Please log in first.",
    403: "You cannot see or change this.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "That file is too large: uploads are limited to 2 MB. "
    "Export fewer ratings per file, or split the file and import each part.",
    429: "Too many attempts. Wait a little and try again.",
    503: "The database is busy (locked by another process), so nothing was saved. "
    "Try again in a few seconds.",
}
DISK_FULL = "The server's disk is full, so nothing was saved. Try again later."


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` for database ids: a number beyond SQLite's integers matches no route
    (404) instead of overflowing inside a query (500)."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def parse_page(raw) -> int:
    """A ``page`` argument as a number from 1 to :data:`MAX_PAGE` (anything not a number:
    1); a larger number is a 400 naming the range, never an overflow in a query."""
    raw = str(raw or "").strip()
    if not raw.isdigit():
        return 1
    page = int(raw)
    if page > MAX_PAGE:
        abort(400, f"page must be a number from 1 to {MAX_PAGE}.")
    return max(1, page)


def page_arg() -> int:
    """``?page=`` of this request, through :func:`parse_page`."""
    return parse_page(request.args.get("page"))


def wants_json() -> bool:
    """True for ``.json`` URLs and for fetch() calls that ask for JSON."""
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, "Something went wrong.")
    if wants_json():
        return jsonify({"error": message, "status": status}), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter

    @app.errorhandler(sqlite3.OperationalError)
    def database_unavailable(exc: sqlite3.OperationalError):
        """A write that waited its whole busy timeout (SQLite retries with growing sleeps
        meanwhile), or a full disk: a clear 503 with Retry-After, never a 500; the
        transaction was rolled back, so nothing the page claims was saved."""
        if store.is_busy(exc):
            message = MESSAGES[503]
        elif store.is_disk_full(exc):
            message = DISK_FULL
        else:
            raise exc
        log.warning("%s %s: %s", request.method, request.path, exc)
        response, status = error_response(503, message)
        response = app.make_response((response, status))
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        if wants_json() and session.get("uid") is None:
            # a page's fetch after its session ended (logged out in another tab): the token
            # died with the session; logging in again is the answer (the page goes there)
            return error_response(401)
        return error_response(
            400,
            "This form has expired or did not come from paperfeed "
            f"({exc.description.rstrip('.')}). Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code in MESSAGES and exc.code != 400:
            return error_response(exc.code)
        return error_response(exc.code or 500, exc.description)
