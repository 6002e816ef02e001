"""What a person's last digest period did, in words: the settings page's answer to "I got no
email" (see :mod:`recommender.digest`; empty periods record why in ``digests.outcome``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .schedule import _zone


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
        return f"Your digest of {period} could not be sent: {row.get('last_error') or 'unknown'}."
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
