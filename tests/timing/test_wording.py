"""How times read in waiting reasons: seconds when it matters (issue 14: a 1 s retry backoff
read "until 13:40 UTC" at 13:40:06, as if it were past)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evman.engine.model import EventSpec
from evman.engine.timing.wording import local_text

NOW = datetime(2026, 3, 2, 13, 40, 6, 500_000, tzinfo=UTC)
SPEC = EventSpec(name="x", run=("true",), cwd="/", timezone="UTC")


def test_a_time_within_the_next_hour_shows_its_seconds() -> None:
    assert local_text(NOW + timedelta(seconds=1), SPEC, NOW) == "13:40:07 UTC"
    assert local_text(NOW + timedelta(minutes=59), SPEC, NOW) == "14:39:06 UTC"


def test_on_the_minute_or_further_off_it_reads_as_before() -> None:
    assert local_text(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), SPEC, NOW) == "14:00 UTC"
    assert local_text(NOW + timedelta(hours=2), SPEC, NOW) == "15:40 UTC"
    assert local_text(NOW - timedelta(seconds=30), SPEC, NOW) == "13:39 UTC"
    assert local_text(NOW + timedelta(days=1, seconds=1), SPEC, NOW) == "2026-03-03 13:40 UTC"


def test_in_the_events_own_zone() -> None:
    london = EventSpec(name="x", run=("true",), cwd="/", timezone="Europe/London")
    summer = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    assert local_text(summer + timedelta(seconds=5), london, summer) == "13:00:05 BST"
