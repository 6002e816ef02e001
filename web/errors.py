"""Error pages: HTML for people, JSON for fetch() and ``.json`` URLs."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: "The request could not be understood.",
    401: "Please log in first.",
    403: "You cannot see or change this.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "That file is too large: uploads are limited to 2 MB. "
    "Export fewer ratings per file, or split the file and import each part.",
    429: "Too many attempts. Wait a little and try again.",
}


def wants_json() -> bool:
    """True for ``.json`` URLs and for fetch() calls that ask for JSON."""
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, "Something went wrong.")
    if wants_json():
        return jsonify({"error": message, "status": status}), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
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
