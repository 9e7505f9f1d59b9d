"""Several engines on one PostgreSQL database: occurrences made once, leases, takeover, fencing,
graceful hand-over, on_lost = "rerun", `evman engines`. Real engines, real PostgreSQL; the
schedules run on a fake clock, the leases on the database's own clock (real seconds)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.fleet.placement import Seat
from evman.engine.model import EventSpec
from evman.engine.store import open_store
from evman.engine.tick.active import Change
from tests.fleet.common import LEASE_S, Make, engine_id, load
from tests.outside import rows, wait_until

EVERY = """
[defaults]
timezone = "UTC"
[[event]]
name = "tick"
call = "builtins:len"
schedule = "every 10 seconds"
concurrency = "queue"
"""


def owners(dsn: str) -> Counter[int]:
    return Counter(int(r["engine_id"]) for r in rows(dsn, "SELECT engine_id FROM runs"))


def test_two_engines_make_each_occurrence_once(make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    load(pg_dsn, EVERY, tmp_path, clock)
    a, b = make(), make()
    for n in range(30):
        clock.advance(timedelta(seconds=10))
        (first, second) = (a, b) if n % 2 else (b, a)
        first.tick()
        second.tick()
    a.settle(clock.now())
    b.settle(clock.now())
    got = rows(pg_dsn, "SELECT scheduled_for, count(*) AS n FROM runs GROUP BY scheduled_for")
    assert len(got) == 30 and {r["n"] for r in got} == {1}
    assert set(owners(pg_dsn)) == {engine_id(a), engine_id(b)}
    ids = [r["id"] for r in rows(pg_dsn, "SELECT id FROM runs")]
    assert len(ids) == len(set(ids))


def test_an_engine_that_stops_ticking_is_taken_over_and_then_fenced(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, EVERY.replace('call = "builtins:len"', 'run = "sleep 30"'), tmp_path, clock)
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    a.tick()
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert run["state"] == "running" and run["engine_id"] == engine_id(a)
    pid = int(run["pid"])
    time.sleep(LEASE_S + 0.3)  # a wedged loop: no tick, no renewal
    b.tick()
    (engine_a,) = rows(pg_dsn, f"SELECT * FROM engines WHERE id = {engine_id(a)}")
    assert engine_a["state"] == "dead" and engine_a["taken_over_by"] == engine_id(b)
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert run["engine_id"] == engine_id(b)
    assert run["state"] == "running"  # its command still runs on this host: b watches it now
    a.tick()  # a wakes up: its lease is gone, its write is refused
    assert a.fenced is not None and "taken over by engine" in a.fenced
    assert rows(pg_dsn, "SELECT state FROM runs") == [{"state": "running"}]  # nothing of a's landed
    b.executors.kill(int(run["id"]), by="test")
    wait_until(
        lambda: b.tick() is not None and rows(pg_dsn, "SELECT state FROM runs")[0]["state"] != "running",
        what="b to see the adopted command end",
    )
    assert pid > 0


def test_a_graceful_stop_hands_over_waiting_runs_at_the_next_tick(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, EVERY + 'requires = "success(never)"\n[[event]]\nname = "never"\nrun = "true"\n', tmp_path, clock)
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    a.tick()
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert run["state"] == "waiting" and run["engine_id"] == engine_id(a)
    a.stop()
    a.shutdown()
    released = rows(pg_dsn, f"SELECT state, stopped_at FROM engines WHERE id = {engine_id(a)}")
    assert released[0]["state"] == "stopped"
    b.tick()
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert run["state"] == "waiting" and run["engine_id"] == engine_id(b)
    assert a.fenced is None


def test_a_lost_run_pages_and_runs_again_only_with_on_lost_rerun(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(
        pg_dsn,
        """
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "plain"
        call = "time:sleep"
        on_failure = { retries = 3 }
        [[event]]
        name = "again"
        call = "time:sleep"
        on_lost = "rerun"
    """,
        tmp_path,
        clock,
    )
    store = open_store(pg_dsn)
    for name in ("plain", "again"):  # running in an engine that died: callables die with it
        store.apply_statements(
            [
                (
                    "INSERT INTO runs (event, state, trigger, scheduled_for, created_at, "
                    "started_at, host) VALUES (?, 'running', 'trigger', ?, 'x', ?, 'elsewhere')",
                    [(name, f"2026-01-05T00:00:0{len(name)}+00:00", "2026-01-05T00:00:00+00:00")],
                )
            ]
        )
    store.close()
    b = make()
    b.tick()
    got = {(r["event"], r["attempt"]): r["state"] for r in rows(pg_dsn, "SELECT * FROM runs")}
    assert got.pop(("again", 2)) in ("waiting", "running")  # started at once, as a new attempt
    assert got == {("plain", 1): "lost", ("again", 1): "lost"}  # no retry for "plain": lost is not failed
    kinds = {(r["event"], r["kind"]) for r in rows(pg_dsn, "SELECT event, kind FROM alerts")}
    assert kinds == {("plain", "lost"), ("again", "lost")}


def test_evman_engines_lists_every_engine_with_its_lease(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from evman.console.cli.main import main

    load(pg_dsn, EVERY, tmp_path, clock)
    a, b = make(), make()
    a.stop()
    a.shutdown()
    done = CliRunner().invoke(main, ["engines", "--json", "--db", pg_dsn])
    assert done.exit_code == 0, done.output
    listed = json.loads(done.output)
    assert [(e["id"], e["live"], e["state"]) for e in listed] == [
        (engine_id(b), True, "live"),
        (engine_id(a), False, "stopped"),
    ]
    assert {"id", "host", "pid", "epoch", "heartbeat_at", "lease_until", "running"} <= set(listed[0])
    text = CliRunner().invoke(main, ["engines", "--db", pg_dsn]).output
    assert "1 live engine(s)" in text


def test_placement_matches_hosts_and_tags() -> None:
    gpu = Seat("web1.example.com", frozenset({"gpu"}))
    assert gpu.fits(EventSpec(name="a", hosts=("web1",)))
    assert gpu.fits(EventSpec(name="a", tags=("gpu",)))
    assert not gpu.fits(EventSpec(name="a", hosts=("web2",)))
    assert not gpu.fits(EventSpec(name="a", tags=("gpu", "big")))


def test_an_engine_does_not_spin_on_a_due_event_another_engine_is_materialising(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one engine holds a due event's row (its tick between claim and commit), the other
    finds it due but locked: it looks again every DUE_ELSEWHERE_WAIT_S, not in a tight loop,
    and makes the occurrence once the row is free."""
    import threading

    from evman.engine.tick.pace import DUE_ELSEWHERE_WAIT_S

    load(pg_dsn, EVERY, tmp_path, clock)
    holder, looker = make(), make()
    clock.advance(timedelta(seconds=10))
    assert [r["name"] for r in holder.store.claim_due_events(clock.now())] == ["tick"]  # locked
    ticks: list[float] = []
    original = looker.tick

    def counted(now: datetime | None = None) -> list[Change]:
        ticks.append(time.monotonic())
        return original(now)

    monkeypatch.setattr(looker, "tick", counted)
    loop = threading.Thread(target=looker.run)
    loop.start()
    try:
        time.sleep(0.5)
        while_locked = len(ticks)
        assert rows(pg_dsn, "SELECT count(*) AS n FROM runs")[0]["n"] == 0
        holder.store.drop_claims()  # the holder's tick ends without making it: the row is free
        wait_until(lambda: rows(pg_dsn, "SELECT engine_id FROM runs"), what="the occurrence")
    finally:
        looker.stop()
        loop.join(10)
    # a tight loop ticks hundreds of times in half a second; one that waits between looks at
    # most 0.5 / DUE_ELSEWHERE_WAIT_S (10), and fewer when the machine is busy
    assert 2 <= while_locked <= 0.5 / DUE_ELSEWHERE_WAIT_S + 3, while_locked
    made = rows(pg_dsn, "SELECT engine_id FROM runs")
    assert [r["engine_id"] for r in made] == [engine_id(looker)]
