"""A burst of new runs is committed in parts (stages/flush.py, PART runs each), each part
started as soon as its commit returned: no run starts before its row is committed as running,
the next fire times are committed after the runs they follow, and a part that fails to commit
starts nothing of itself and loses nothing (the next tick writes and starts the rest)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import timedelta

import pytest

from evman.engine.clock import FakeClock
from evman.engine.stages.flush import PART, PART_SWITCH_S, put_back_switch
from evman.engine.store import Store, StoreError
from tests.stages import burst_jobs

N = 2 * PART + 10
"""Three parts: two whole, one of ten."""


def _burst(store: Store, clock: FakeClock) -> str:
    due = (clock.now() + timedelta(seconds=5)).isoformat()
    keys = f'call = "tests.stages.burst_jobs:look"\nschedule = "at {due}"\nenv = {{ DB = "{store.path}" }}\n'
    return '[defaults]\ntimezone = "UTC"\n' + "".join(f'[[event]]\nname = "b{i:04d}"\n{keys}' for i in range(N))


def _wait_calls(count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(burst_jobs.seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(burst_jobs.seen) >= count, f"{len(burst_jobs.seen)} of {count} callables ran"


def _rows_inserted(sql: str) -> int:
    """Runs an INSERT as traced inserts (several rows to a statement: `VALUES (...), (...)`)."""
    return sql.count("), (") + 1 if sql.startswith("INSERT INTO runs") else 0


def _transactions(statements: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for sql in statements:
        if sql.startswith("BEGIN"):
            out.append([])
        elif out and sql != "COMMIT":
            out[-1].append(sql)
    return out


def test_a_burst_commits_in_parts_and_no_run_starts_before_its_row(engine_factory, clock, store) -> None:
    burst_jobs.seen.clear()
    engine = engine_factory(_burst(store, clock))
    statements: list[str] = []
    clock.advance(timedelta(seconds=5))
    store.conn.set_trace_callback(statements.append)
    try:
        engine.tick(clock.now())
        _wait_calls(N)
    finally:
        store.conn.set_trace_callback(None)
    written = [tx for tx in _transactions(statements) if tx]
    inserts = [sum(_rows_inserted(sql) for sql in tx) for tx in written]
    assert [n for n in inserts if n] == [PART, PART, 10]
    fires = [k for k, tx in enumerate(written) if any(sql.startswith("UPDATE events SET next_fire_at") for sql in tx)]
    last_insert = max(k for k, n in enumerate(inserts) if n)
    assert fires and min(fires) > last_insert  # never a next fire time before its run
    assert sorted(run for run, _ in burst_jobs.seen) == list(range(1, N + 1))
    assert {state for _, state in burst_jobs.seen} == {"running"}  # each saw its row committed first


def test_a_part_that_fails_to_commit_starts_nothing_and_the_next_tick_writes_the_rest(
    engine_factory, clock, store, monkeypatch
) -> None:
    burst_jobs.seen.clear()
    engine = engine_factory(_burst(store, clock))
    apply, calls = store.apply, []

    def full_disk_at_the_second_part(batch, owner=None):  # the disk fills up between two parts
        calls.append(len(batch.runs))
        if len(calls) == 2:
            raise StoreError("database or disk is full")
        return apply(batch, owner)

    monkeypatch.setattr(store, "apply", full_disk_at_the_second_part)
    clock.advance(timedelta(seconds=5))
    with pytest.raises(StoreError):
        engine.tick(clock.now())
    _wait_calls(PART)
    time.sleep(0.2)  # nothing else may start: give a wrong start the time to show
    assert len(burst_jobs.seen) == PART
    assert store.value("SELECT count(*) FROM runs") == PART
    assert store.value("SELECT count(*) FROM events WHERE next_fire_at IS NOT NULL") == N  # none lost
    monkeypatch.setattr(store, "apply", apply)
    engine.tick(clock.now())
    _wait_calls(N)
    assert Counter(run for run, _ in burst_jobs.seen) == Counter(range(1, N + 1))  # each once
    assert {state for _, state in burst_jobs.seen} == {"running"}
    assert store.value("SELECT count(*) FROM runs") == N
    assert store.value("SELECT count(*) FROM events WHERE next_fire_at IS NOT NULL") == 0


def test_a_burst_puts_the_switch_interval_back(engine_factory, clock, store) -> None:
    """Shortened while the parts are written (the engine's thread takes the GIL back sooner), then
    as it was: a burst must not leave the whole process switching ten times as often."""
    before = sys.getswitchinterval()
    burst_jobs.seen.clear()
    engine = engine_factory(_burst(store, clock))
    clock.advance(timedelta(seconds=5))
    try:
        sys.setswitchinterval(0.004)
        engine.tick(clock.now())
        _wait_calls(N)
        assert sys.getswitchinterval() == pytest.approx(0.004)
        assert len(burst_jobs.seen) == N  # it was a burst in parts, which shortens it
    finally:
        sys.setswitchinterval(before)


def test_a_switch_interval_set_meanwhile_is_left_as_it_was_set() -> None:
    """The console shortens the interval until its first frame and puts its own back then; a
    burst written meanwhile must not undo that by putting back what it saw before."""
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(PART_SWITCH_S)
        put_back_switch(0.004, PART_SWITCH_S)
        assert sys.getswitchinterval() == pytest.approx(0.004)  # nobody else touched it: put back
        sys.setswitchinterval(0.003)  # the console, meanwhile
        put_back_switch(0.0005, PART_SWITCH_S)
        assert sys.getswitchinterval() == pytest.approx(0.003)
    finally:
        sys.setswitchinterval(before)
