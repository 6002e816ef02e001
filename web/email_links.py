"""Links in emails: rate a paper, unsubscribe. Placeholder; the views land shortly."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("email_links", __name__)
