"""Window bounds: times of day (spanning midnight) and relative "+DURATION" bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.definitions import DefinitionsError, parse_definitions
from evman.engine.model import EventSpec, Window
from evman.engine.timing.windows import bounds_for

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def spec(**kw: Any) -> EventSpec:
    return EventSpec(name="e", run=("true",), timezone="UTC", **kw)


def test_relative_latest_counts_from_the_scheduled_time() -> None:
    b = bounds_for(spec(window=Window(latest="+20s")), AT)
    assert (b.open_at, b.due_by, b.late_at) == (None, AT + timedelta(seconds=20), None)


def test_relative_and_clock_bounds_mix() -> None:
    b = bounds_for(spec(window=Window(earliest="13:00", latest="+2h"), late_after="+90m"), AT)
    assert b.open_at == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert b.due_by == AT + timedelta(hours=2)
    assert b.late_at == AT + timedelta(minutes=90)


def test_clock_window_spanning_midnight_takes_the_coming_night() -> None:
    b = bounds_for(spec(window=Window(earliest="22:00", latest="02:00")), AT)
    assert b.open_at == datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
    assert b.due_by == datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


def test_definitions_accept_relative_window_times(tmp_path: Path) -> None:
    defs = parse_definitions(
        '[[event]]\nname = "e"\nrun = "true"\nwindow = { latest = "+8s" }\nlate_after = "+2s"\n',
        source="d.toml",
        base_dir=tmp_path,
    )
    assert defs.events[0].window.latest == "+8s" and defs.events[0].late_after == "+2s"


@pytest.mark.parametrize("bad", ["+8x", "+", "+-3s"])
def test_definitions_refuse_bad_relative_times(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DefinitionsError) as err:
        parse_definitions(
            f'[[event]]\nname = "e"\nrun = "true"\nwindow = {{ latest = "{bad}" }}\n',
            source="d.toml",
            base_dir=tmp_path,
        )
    assert "event 'e'" in str(err.value) and "window.latest" in str(err.value)


def test_timeout_kills_the_run_and_counts_as_failed(engine_factory, clock, store) -> None:
    engine = engine_factory("""
        [[event]]
        name = "slow"
        run = "sleep 30"
        timeout = "10s"
    """)
    store.add_request("trigger", "slow", requested_by="t")
    engine.tick(clock.now())
    assert store.run(1)["state"] == "running"
    clock.advance(timedelta(seconds=11))
    engine.settle(clock.now())
    row = store.run(1)
    assert row["state"] == "failed" and "timeout 10s exceeded" in row["reason"]
