"""Who is due: each person's period and its send instant in their time zone (see
:mod:`recommender.digest`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from .. import store

log = logging.getLogger("recommender.digest")

#: How long after its send instant a period is still sent (scheduler downtime, slow runs).
CATCH_UP = timedelta(hours=12)


@dataclass(frozen=True)
class Due:
    """One person's digest that should go out now."""

    user: dict
    period: str  # the local send day, YYYY-MM-DD
    due_at: datetime  # the local send instant, in UTC


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("digest: unknown time zone %r, using UTC", name)
        return ZoneInfo("UTC")


def send_instant(day: date, hour: int, timezone: str | None) -> datetime:
    """``hour:00`` on ``day`` in ``timezone``, as a UTC datetime.

    A wall time skipped by a spring-forward change resolves to the instant just
    after the gap; a repeated one (fall back) to its first occurrence.
    """
    local = datetime.combine(day, time(hour), tzinfo=_zone(timezone))  # fold=0: first
    return local.astimezone(UTC)


def current_period(user: dict, now: datetime) -> tuple[str, datetime] | None:
    """The person's newest period whose send instant has passed, if within :data:`CATCH_UP`.

    ``user`` needs ``timezone``, ``digest_cadence``, ``digest_weekday`` (0 = Monday)
    and ``digest_hour``. Returns ``(period, due_at)`` or None.
    """
    today = now.astimezone(_zone(user["timezone"])).date()
    # Walk back from the local day: at most 8 days covers a weekly period and its edge.
    for back in range(8):
        day = today - timedelta(days=back)
        if user["digest_cadence"] == "weekly" and day.weekday() != user["digest_weekday"]:
            continue
        due_at = send_instant(day, user["digest_hour"], user["timezone"])
        if due_at <= now:
            return (day.isoformat(), due_at) if now - due_at <= CATCH_UP else None
    return None


def due_people(db: Database, now: datetime, *, email: str | None = None) -> list[Due]:
    """Everyone whose current period has come and has no ledger row yet."""
    candidates = []
    for user in store.digest_subscribers(db, email=email):
        found = current_period(user, now)
        if found is not None:
            candidates.append(Due(user, *found))
    taken = store.claimed_periods(db, {d.period for d in candidates})
    return [d for d in candidates if (d.user["id"], d.period) not in taken]
