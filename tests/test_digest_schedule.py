"""Who is due when: local send hours in IANA time zones, daylight-saving changes, weekly
cadence, catching up after downtime. The clock is always passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recommender import digest

from . import test_digest
from .test_digest import add_user, ledger

# The digest tests' fixtures, shared by name.
mail_env, papers, settings = test_digest.mail_env, test_digest.papers, test_digest.settings


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def person(timezone: str, hour: int, cadence: str = "daily", weekday: int = 0) -> dict:
    return {
        "timezone": timezone,
        "digest_hour": hour,
        "digest_cadence": cadence,
        "digest_weekday": weekday,
    }


@pytest.mark.parametrize(
    ("timezone", "hour", "day", "due_utc"),
    [
        # Berlin: CET (UTC+1) until the last Sunday of March, then CEST (UTC+2).
        ("Europe/Berlin", 7, "2025-03-29", utc(2025, 3, 29, 6)),
        ("Europe/Berlin", 7, "2025-03-30", utc(2025, 3, 30, 5)),
        ("Europe/Berlin", 7, "2025-10-26", utc(2025, 10, 26, 6)),  # back to CET
        # New York springs forward at 02:00 on 9 March 2025: 02:00 does not exist that day,
        # so the 02:00 digest goes at the first instant after the gap, 03:00 EDT.
        ("America/New_York", 2, "2025-03-08", utc(2025, 3, 8, 7)),
        ("America/New_York", 2, "2025-03-09", utc(2025, 3, 9, 7)),
        ("America/New_York", 2, "2025-03-10", utc(2025, 3, 10, 6)),
        # ... and falls back on 2 November: 01:00 happens twice; the first one counts.
        ("America/New_York", 1, "2025-11-02", utc(2025, 11, 2, 5)),
        # Southern hemisphere and a half-hour zone.
        ("Pacific/Auckland", 7, "2025-04-06", utc(2025, 4, 5, 19)),  # NZDT ends that morning
        ("Asia/Kolkata", 7, "2025-03-10", utc(2025, 3, 10, 1, 30)),
    ],
)
def test_the_send_instant_follows_the_local_wall_clock(timezone, hour, day, due_utc):
    assert digest.send_instant(datetime.fromisoformat(day).date(), hour, timezone) == due_utc
    one_second_early = due_utc - timedelta(seconds=1)
    assert digest.current_period(person(timezone, hour), due_utc) == (day, due_utc)
    early = digest.current_period(person(timezone, hour), one_second_early)
    assert early is None or early[0] < day


def test_the_period_is_the_local_day_not_the_utc_day():
    # 19:00 UTC on Saturday 5 April is already Sunday 08:00 in Auckland.
    now = utc(2025, 4, 5, 19, 0)
    assert digest.current_period(person("Pacific/Auckland", 7), now) == (
        "2025-04-06",
        utc(2025, 4, 5, 19),
    )
    assert digest.current_period(person("Pacific/Honolulu", 7), now) == (
        "2025-04-05",
        utc(2025, 4, 5, 17),
    )


def test_weekly_is_due_on_the_chosen_weekday_only():
    wednesday_8 = person("UTC", 8, cadence="weekly", weekday=2)
    assert digest.current_period(wednesday_8, utc(2025, 3, 11, 12)) is None  # Tuesday
    assert digest.current_period(wednesday_8, utc(2025, 3, 12, 7, 59)) is None
    assert digest.current_period(wednesday_8, utc(2025, 3, 12, 8)) == (
        "2025-03-12",
        utc(2025, 3, 12, 8),
    )
    assert digest.current_period(wednesday_8, utc(2025, 3, 13, 8)) is None  # past the catch-up


def test_a_period_is_due_until_the_catch_up_window_closes():
    seven = person("UTC", 7)
    assert digest.current_period(seven, utc(2025, 3, 10, 7) + digest.CATCH_UP)[0] == "2025-03-10"
    late = utc(2025, 3, 10, 7) + digest.CATCH_UP + timedelta(seconds=1)
    assert digest.current_period(seven, late) is None
    # A 22:00 digest is still due at 01:00 the next day, for its own (previous) day.
    assert digest.current_period(person("UTC", 22), utc(2025, 3, 11, 1)) == (
        "2025-03-10",
        utc(2025, 3, 10, 22),
    )


def test_an_unknown_time_zone_falls_back_to_utc():
    assert digest.current_period(person("Mars/Olympus_Mons", 7), utc(2025, 3, 10, 7, 1)) == (
        "2025-03-10",
        utc(2025, 3, 10, 7),
    )


def run_every(db, settings, start: datetime, end: datetime, step: timedelta) -> list:
    """Run the digest job like the scheduler would, from ``start`` to ``end``."""
    now = start
    while now <= end:
        digest.send_due_digests(db, settings, now=now)
        now += step
    return ledger(db)


def test_across_the_spring_forward_weekend_one_digest_a_day_at_local_seven(papers, settings):
    db = papers
    add_user(db, "berlin@example.org", digest_size=2)
    rows = run_every(
        db, settings, utc(2025, 3, 28, 20), utc(2025, 3, 31, 20), timedelta(minutes=15)
    )
    assert [(r["period"], r["due_at"], r["created_at"], r["state"]) for r in rows] == [
        ("2025-03-29", "2025-03-29T06:00:00+00:00", "2025-03-29T06:00:00+00:00", "sent"),
        ("2025-03-30", "2025-03-30T05:00:00+00:00", "2025-03-30T05:00:00+00:00", "sent"),
        ("2025-03-31", "2025-03-31T05:00:00+00:00", "2025-03-31T05:00:00+00:00", "sent"),
    ]
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 3


def test_the_repeated_fall_back_hour_sends_once(papers, settings):
    db = papers
    add_user(db, "nyc@example.org", timezone="America/New_York", digest_hour=1, digest_size=2)
    # 01:00 EDT is 05:00 UTC; 01:00 EST (the second one) is 06:00 UTC.
    rows = run_every(db, settings, utc(2025, 11, 2, 4), utc(2025, 11, 2, 8), timedelta(minutes=10))
    assert [(r["period"], r["due_at"], r["state"]) for r in rows] == [
        ("2025-11-02", "2025-11-02T05:00:00+00:00", "sent")
    ]


def test_weekly_people_get_one_digest_a_week(papers, settings):
    db = papers
    add_user(db, "weekly@example.org", timezone="UTC", digest_cadence="weekly", digest_weekday=2)
    add_user(db, "daily@example.org", timezone="UTC", digest_size=1)
    rows = run_every(db, settings, utc(2025, 3, 10), utc(2025, 3, 23, 23), timedelta(hours=1))
    weekly = [r["period"] for r in rows if r["recipient"] == "weekly@example.org"]
    daily = [r["period"] for r in rows if r["recipient"] == "daily@example.org"]
    assert weekly == ["2025-03-12", "2025-03-19"]
    assert len(daily) == 14 and len(set(daily)) == 14


def test_a_scheduler_down_at_seven_sends_the_seven_oclock_digest_once_on_return(papers, settings):
    db = papers
    add_user(db, "ada@example.org", timezone="UTC")
    assert digest.send_due_digests(db, settings, now=utc(2025, 3, 10, 6, 55)).due == 0
    # Down from 06:55 to 09:40; back, it runs at once and then every five minutes.
    assert digest.send_due_digests(db, settings, now=utc(2025, 3, 10, 9, 40)).sent == 1
    assert digest.send_due_digests(db, settings, now=utc(2025, 3, 10, 9, 45)).sent == 0
    assert [(r["period"], r["state"]) for r in ledger(db)] == [("2025-03-10", "sent")]
