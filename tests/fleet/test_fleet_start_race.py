"""Two engines deciding, in ticks open at the same time, to start runs of one event: each reads
the other engines' committed runs, and neither sees the run the other is starting until it
commits. The fleet drill saw it (runs 2 and 102 of a queued event, made by two engines from two
trigger requests, ran at once). An engine starts a run of an event only under the event's row
lock, taken before it reads the others' runs of it and held until its flush commits: the other
engine skips the locked row and its run waits. Real engines on the real PostgreSQL; the second
engine's whole tick is placed inside the first's, before its start stage (the first must read
again under its lock what it read earlier in the tick) or after it, before its flush."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine import engine as engine_module
from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from tests.fleet.common import Make, engine_id, fail_next_apply, load, membership
from tests.outside import connect, rows

pytest.importorskip("psycopg")

ONE_AT_A_TIME = """
[defaults]
timezone = "UTC"
[[event]]
name = "req"
run = "sleep 30"
concurrency = "{concurrency}"
{schedule}
"""


def _trigger(dsn: str) -> None:
    """A trigger request as the drill's requests program writes it."""
    conn = connect(dsn)
    try:
        conn.execute("INSERT INTO requests (verb, target, requested_by) VALUES ('trigger', 'req', 'test')")
    finally:
        conn.close()


_STAGE = {"before its start stage": "reap", "after its start stage": "check_deadlines"}
"""Where b's tick goes in a's: the stage of a's tick that b's runs just before."""


def _inside(monkeypatch: pytest.MonkeyPatch, a: Engine, b: Engine, where: str, dsn: str, clock: FakeClock) -> None:
    """b's whole tick, a millisecond later, runs inside a's next one (`where`: before a's start
    stage, or after it, before a's flush); b answers a trigger request written meanwhile."""
    name = _STAGE[where]
    real = getattr(engine_module, name)
    done: list[bool] = []

    def then_b(tick: Any, *args: Any) -> None:
        if tick.owner == membership(a).token and not done:
            done.append(True)
            _trigger(dsn)
            clock.advance(timedelta(milliseconds=1))  # (a trigger's run is for its tick's instant)
            b.tick()
        real(tick, *args)

    monkeypatch.setattr(engine_module, name, then_b)


@pytest.mark.parametrize(
    ("concurrency", "made_on_a", "where"),
    [
        ("queue", "request", "after its start stage"),
        ("skip", "request", "after its start stage"),
        ("queue", "schedule", "after its start stage"),
        ("queue", "request", "before its start stage"),
        ("queue", "schedule", "before its start stage"),
    ],
)
def test_two_engines_never_start_runs_of_one_event_at_once(
    make: Make,
    pg_dsn: str,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: str,
    made_on_a: str,
    where: str,
) -> None:
    schedule = 'schedule = "every 10 seconds"' if made_on_a == "schedule" else ""
    load(pg_dsn, ONE_AT_A_TIME.format(concurrency=concurrency, schedule=schedule), tmp_path, clock)
    a, b = make(), make()
    if made_on_a == "request":
        _trigger(pg_dsn)
    else:
        clock.advance(timedelta(seconds=10))
    _inside(monkeypatch, a, b, where, pg_dsn, clock)
    a.tick()  # a makes its run and decides; b, inside a's tick, makes one from its own trigger request
    made = rows(
        pg_dsn, "SELECT id, state, engine_id, trigger, waiting_reason FROM runs WHERE event = 'req' ORDER BY id"
    )
    assert sorted((r["engine_id"], r["trigger"]) for r in made) == sorted(
        [(engine_id(a), "trigger" if made_on_a == "request" else "schedule"), (engine_id(b), "trigger")]
    ), made
    running = [r for r in made if r["state"] == "running"]
    assert len(running) == 1, f"two engines started runs of req at once: {made}"
    (first,) = running
    # b's run waits for a's lock on req, unless b decided before a took it (b's run then runs)
    b_first = (made_on_a, where) == ("request", "before its start stage")
    assert first["engine_id"] == engine_id(b if b_first else a)
    (second,) = [r for r in made if r["state"] == "waiting"]
    queued = f"queued behind run {first['id']} (running on engine {first['engine_id']})"
    held = "another engine is starting runs of this event now; this one is looked at again next tick"
    assert second["waiting_reason"] == (queued if b_first else held)
    other = a if second["engine_id"] == engine_id(a) else b
    other.tick()  # the one that runs is committed: the other queues behind it
    after = rows(pg_dsn, "SELECT state, waiting_reason FROM runs WHERE id = ?", (second["id"],))[0]
    assert after == {"state": "waiting", "waiting_reason": queued}


def test_a_start_whose_flush_failed_is_decided_again_under_the_lock(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """The event's lock went with the failed transaction: another engine may have started a run
    of it meanwhile, so the carried start is decided anew, never written as it was."""
    from evman.engine.store import StoreError

    load(pg_dsn, ONE_AT_A_TIME.format(concurrency="queue", schedule=""), tmp_path, clock)
    a, b = make(), make()
    failed = fail_next_apply(a)
    _trigger(pg_dsn)
    with pytest.raises(StoreError):
        a.tick()  # a starts a run of req, and its flush fails
    assert failed and rows(pg_dsn, "SELECT id FROM runs WHERE event = 'req'") == []
    _trigger(pg_dsn)
    clock.advance(timedelta(milliseconds=1))
    b.tick()  # b finds no run of req anywhere: it starts its own
    (theirs,) = rows(pg_dsn, "SELECT id, state FROM runs WHERE event = 'req'")
    assert theirs["state"] == "running"
    a.tick()  # a writes its tick again: its run waits behind b's
    made = rows(
        pg_dsn, "SELECT id, state, waiting_reason FROM runs WHERE event = 'req' AND engine_id = ?", (engine_id(a),)
    )
    assert [(r["state"], r["waiting_reason"]) for r in made] == [
        ("waiting", f"queued behind run {theirs['id']} (running on engine {engine_id(b)})")
    ], made
