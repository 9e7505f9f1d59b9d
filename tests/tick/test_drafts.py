"""The runs of the next due occurrence are drafted between ticks (engine/tick/drafts.py): their
parameters, window and next fire worked out ahead, and the due tick makes them from the drafts
and starts those nothing holds at once (stages/start.py, start_drafted). What it writes must be
what the tick alone writes, whatever holds a run back; and a `load` between the look-ahead and
the due time must be obeyed, never the draft of the old spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.engine import Engine
from evman.engine.model import EventSpec, Param
from evman.engine.store import Store, open_store
from evman.engine.tick import coordination
from evman.engine.tick.drafts import draft_of, scheduled_params
from evman.engine.timing.windows import bounds_for
from tests.conftest import load_text
from tests.stages.stage_helpers import ask, runs

DUE = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
EVENT = """
    [[event]]
    name = "{name}"
    call = "tests.stages.pool_jobs:record"
    schedule = "0 3 * * *"
    {extra}
"""
KINDS = {
    "plain": "",
    "params": 'params = { day = { default = "{date}" }, mode = { default = "full" } }',
    "window": 'window = { earliest = "04:00", latest = "06:00" }',
    "closing": 'window = { latest = "+1m" }',
    "late": 'late_after = "+10m"',
    "approval": 'approval = { route = "lead" }',
    "requires": 'requires = "success(plain)"',
    "pooled": "uses = { warehouse = 1 }",
    "pooled-too": "uses = { warehouse = 1 }",
    "blacked": 'tags = ["db"]',
    "held": "",
    "queued": 'concurrency = "queue"',
}
DEFS = (
    '[defaults]\ntimezone = "UTC"\n\n[pools]\nwarehouse = 1\n\n[blackouts.freeze]\nfrom = "2026-01-05T02:00"\n'
    'to = "2026-01-05T04:00"\ntags = ["db"]\n'
    + "".join(EVENT.format(name=name, extra=extra) for name, extra in KINDS.items())
    + EVENT.format(name="hourly", extra='concurrency = "queue"\nwindow = { earliest = "+90m" }').replace(
        '"0 3 * * *"', '"0 * * * *"'
    )
)


def _engine(path: Path, clock: FakeClock) -> Engine:
    store = open_store(path)
    load_text(store, DEFS, path.parent, clock.now())
    engine = Engine(store, clock=clock, logs_dir=path.parent / "logs")
    engine.start()
    return engine


def _due_tick(path: Path, *, looked_ahead: bool) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], list[Any]]:
    """The runs, next fire times and changes of the tick at DUE, by an engine that ran from an
    hour before (with `looked_ahead`, calling between_ticks as its loop does)."""
    clock = FakeClock(DUE - timedelta(hours=1))
    engine = _engine(path, clock)
    try:
        engine.tick(clock.now())  # hourly's 02:00 run: it waits in its window until 03:00's comes
        ask(engine, "hold", "held", now=clock.now())
        clock.set(DUE - timedelta(seconds=1))
        engine.tick(clock.now())
        if looked_ahead:
            engine.between_ticks()
            assert set(engine.store.event_names()) - {"held"} <= set(_view(engine).drafts) | {"held"}
        else:
            assert _view(engine).drafts == {}
        clock.set(DUE)
        changes = [(c.kind, c.event, c.run_id, c.state, c.detail) for c in engine.tick(DUE)]
        found = [{k: v for k, v in r.items() if k != "log_path"} for r in runs(engine.store)]
        fires = engine.store.rows("SELECT name, next_fire_at FROM events ORDER BY name")
        engine.settle(DUE)
        return found, [tuple(r) for r in fires], sorted(changes, key=repr)
    finally:
        engine.executors.shutdown(wait_s=0)
        engine.store.close()


def _view(engine: Engine) -> Any:
    return engine._view  # the read view its ticks see


def test_a_due_tick_from_drafts_writes_what_the_tick_alone_writes(tmp_path: Path) -> None:
    (tmp_path / "ahead").mkdir()
    (tmp_path / "alone").mkdir()
    ahead = _due_tick(tmp_path / "ahead" / "evman.db", looked_ahead=True)
    alone = _due_tick(tmp_path / "alone" / "evman.db", looked_ahead=False)
    assert ahead[0] == alone[0]
    assert ahead[1] == alone[1]
    assert ahead[2] == alone[2]
    by_event = {r["event"]: r for r in ahead[0] if r["scheduled_for"].startswith("2026-01-05T03:00")}
    started = {name for name, r in by_event.items() if r["state"] == "running"}
    assert started == {"plain", "params", "closing", "late", "queued", "pooled"}, by_event  # nothing held them
    waiting = ("window", "approval", "requires", "pooled-too", "blacked", "held", "hourly")  # hourly: behind 02:00's
    assert {by_event[n]["state"] for n in waiting} == {"waiting"}


@pytest.mark.parametrize("name", list(KINDS))
def test_a_draft_is_what_the_due_tick_would_work_out(tmp_path: Path, name: str, clock: FakeClock) -> None:
    store = open_store(tmp_path / "evman.db")
    try:
        load_text(store, DEFS, tmp_path, DUE - timedelta(hours=1))
        engine = Engine(store, clock=FakeClock(DUE - timedelta(hours=1)), logs_dir=tmp_path / "logs")
        spec = _view(engine).spec(name)
        assert spec is not None
        draft = draft_of(spec, iso(DUE), DUE, DUE + timedelta(days=1))
        assert draft is not None
        assert draft.bounds == bounds_for(spec, DUE)
        given = coordination.params_for(spec, DUE, given=None, leader=None, repeats=None)
        assert draft.params == given == scheduled_params(spec, DUE)
        assert draft.next_text == iso(DUE + timedelta(days=1))
    finally:
        store.close()


def test_a_draft_of_a_run_that_cannot_have_its_parameters_is_none() -> None:
    spec = EventSpec(name="report", call="builtins:print", params={"customer": Param(required=True)})
    assert draft_of(spec, iso(DUE), DUE, None) is None  # the due tick says why, as ever


RELOADED = """
    [defaults]
    timezone = "UTC"

    [[event]]
    name = "nightly"
    call = "tests.stages.pool_jobs:record"
    schedule = "0 3 * * *"
    {extra}
"""


@pytest.mark.parametrize(
    ("before", "after", "expect"),
    [
        ("", 'window = { earliest = "05:00" }', {"state": "waiting", "window_open": iso(DUE + timedelta(hours=2))}),
        ('window = { earliest = "05:00" }', "", {"state": "running", "window_open": None}),
        (
            'params = { mode = { default = "full" } }',
            'params = { mode = { default = "delta" } }',
            {"state": "running", "params": '{"mode": "delta"}'},
        ),
    ],
    ids=["a window added", "a window taken away", "a default changed"],
)
def test_a_load_between_the_look_ahead_and_the_due_time_is_obeyed(
    engine_factory: Any, clock: FakeClock, store: Store, tmp_path: Path, before: str, after: str, expect: dict[str, Any]
) -> None:
    clock.set(DUE - timedelta(minutes=10))
    engine = engine_factory(RELOADED.format(extra=before))
    engine.tick(clock.now())
    engine.between_ticks()
    drafted = _view(engine).drafts["nightly"]
    other = open_store(store.target)  # `evman load`: another program, its own connection
    try:
        load_text(other, RELOADED.format(extra=after), tmp_path, clock.now())
    finally:
        other.close()
    clock.set(DUE)
    engine.tick(DUE)
    (run,) = runs(store, "nightly")
    assert {key: run[key] for key in expect} == expect
    assert _view(engine).spec("nightly") is not drafted.spec  # decoded again: the draft serves it no more
    engine.settle(DUE)
