"""Deadline resolution: a time of day on the occurrence's day (next day when before the
window opens), "+DURATION" from when it fell due, window.latest when no deadline is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from evman.engine.model import EventSpec, Window
from evman.engine.timing.durations import TimeOfDayError
from evman.engine.timing.windows import resolve_deadline


def spec(**kw: Any) -> EventSpec:
    kw.setdefault("timezone", "UTC")
    return EventSpec(name="e", run=("true",), **kw)


def utc(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 3, day, hh, mm, tzinfo=UTC)


def test_a_time_of_day_after_the_window_opens_is_that_day() -> None:
    assert resolve_deadline("20:00", spec(window=Window(earliest="08:00")), utc(10, 7)) == utc(10, 20)


def test_a_time_of_day_before_the_window_opens_is_the_next_day() -> None:
    assert resolve_deadline("06:00", spec(window=Window(earliest="22:00")), utc(10, 21)) == utc(11, 6)


def test_a_window_spanning_midnight_counts_from_its_opening_night() -> None:
    s = spec(window=Window(earliest="22:00", latest="07:00"))
    # scheduled after midnight: the window instance opened the evening before
    assert resolve_deadline("06:00", s, utc(11, 1)) == utc(11, 6)
    assert resolve_deadline("23:30", s, utc(11, 1)) == utc(10, 23, 30)


def test_without_a_window_the_day_is_when_it_fell_due() -> None:
    assert resolve_deadline("06:00", spec(), utc(10, 23)) == utc(11, 6)
    assert resolve_deadline("06:00", spec(), utc(10, 1)) == utc(10, 6)


def test_a_relative_deadline_counts_from_when_it_fell_due() -> None:
    s = spec(window=Window(earliest="22:00"))
    assert resolve_deadline("+6h", s, utc(10, 21, 15)) == utc(11, 3, 15)


def test_window_latest_is_the_deadline_when_none_is_given() -> None:
    assert resolve_deadline(None, spec(window=Window(earliest="22:00", latest="05:00")), utc(10, 21)) == utc(11, 5)
    assert resolve_deadline(None, spec(window=Window(latest="+90m")), utc(10, 21)) == utc(10, 22, 30)
    assert resolve_deadline(None, spec(), utc(10, 21)) is None


def test_an_explicit_deadline_wins_over_window_latest() -> None:
    s = spec(window=Window(earliest="22:00", latest="07:00"))
    assert resolve_deadline("05:30", s, utc(10, 22)) == utc(11, 5, 30)


def test_a_deadline_follows_the_events_timezone_across_a_dst_change() -> None:
    # Europe/London springs forward on 2026-03-29: 06:00 local is 05:00 UTC that morning
    s = spec(timezone="Europe/London", window=Window(earliest="22:00"))
    assert resolve_deadline("06:00", s, datetime(2026, 3, 28, 22, 0, tzinfo=UTC)) == utc(29, 5)
    assert resolve_deadline("06:00", s, datetime(2026, 3, 21, 22, 0, tzinfo=UTC)) == utc(22, 6)


def test_a_bad_deadline_says_what_is_wrong() -> None:
    with pytest.raises(TimeOfDayError, match="25:00"):
        resolve_deadline("25:00", spec(), utc(10, 1))
    assert resolve_deadline("+0s", spec(), utc(10, 1)) == utc(10, 1) + timedelta(0)
