"""What a person's last digest period did, in words: the settings page's answer to "I got no
email" (see :mod:`recommender.digest`; empty periods record why in ``digests.outcome``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .schedule import _zone

#: What happens to a digest the mail server refused (see store.requeue_refused_digests).
RETRY_ON_NEW_SERVER = "We will try it again when the mail server setting changes."


def problem_words(problem: dict) -> str:
    """An undelivered digest (:func:`recommender.store.digest_problem`) in words: said
    beside the last period's outcome when a later period hides it."""
    then = RETRY_ON_NEW_SERVER if problem["status"] == "failed" else "We keep trying."
    error = (problem["error"] or "unknown").rstrip(".")
    return (
        f"Your digest of {problem['period']} could not be delivered to {problem['address']}:"
        f" {error}. {then}"
    )


def outcome_words(row: dict | None, timezone: str | None = None) -> str:
    """What a person's last digest period did, in words (the settings page's answer to
    "I got no email")."""
    if row is None:
        return "No digest has been due for you yet."
    state, period = row["state"], row["period"]
    if state == "sent":
        return f"Your digest of {period} was sent with {row['papers']} papers."
    if state in ("pending", "sending"):
        retry = row.get("next_attempt_at")
        note = f" ({row['last_error']})" if row.get("last_error") else ""
        return f"Your digest of {period} is being sent{note}; next try at {_at(retry, timezone)}."
    if state == "failed":
        error = (row.get("last_error") or "unknown").rstrip(".")
        again = (
            f" {RETRY_ON_NEW_SERVER}"
            if json.loads(row.get("outcome") or "{}").get("kind") == "refused"
            else ""
        )
        return f"Your digest of {period} could not be sent: {error}.{again}"
    if state == "cancelled":
        return f"Your digest of {period} was not sent: you turned digests off."
    outcome = json.loads(row.get("outcome") or "{}")
    if outcome.get("kind") == "source_failed":
        return (
            f"No digest on {period}: the source failed ({outcome['source']});"
            f" retrying at {_at(outcome.get('retry_at'), timezone)}."
        )
    if outcome.get("kind") == "below_bar":
        best = outcome.get("best")
        scored = f", the best scored {best}" if best is not None else ""
        return (
            f"No digest on {period}: nothing new above your bar:"
            f" {outcome['arrived']} papers arrived{scored}."
        )
    return f"No digest on {period}: no new papers arrived since your last one."


def _at(stamp: str | None, timezone: str | None) -> str:
    if not stamp:
        return "the next run"
    when = datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(_zone(timezone)).strftime("%H:%M") + (
        "" if timezone and timezone != "UTC" else " UTC"
    )
