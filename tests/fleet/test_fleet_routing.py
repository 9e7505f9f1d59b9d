"""Several engines on one PostgreSQL database: requests reach the engine that owns what they
name, and concurrency, running(E) and holds count every engine's runs. Two engines in this
process on one database, a fake clock for the schedules, real child processes where a kill
must kill (the leases run on the database's clock, in real seconds)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.running.procs import pid_alive
from evman.engine.store import open_store
from tests.fleet.common import LEASE_S, Make, engine_id, load
from tests.outside import connect, rows, wait_until

pytest.importorskip("psycopg")

LONG = """
[defaults]
timezone = "UTC"
[[event]]
name = "long"
run = "sleep 30"
concurrency = "queue"
"""

SLOW = """
[defaults]
timezone = "UTC"
[[event]]
name = "slow"
run = "sleep 30"
schedule = "every 10 seconds"
[[event]]
name = "watch"
call = "builtins:len"
requires = "notrunning(slow)"
"""


def ask(dsn: str, verb: str, target: str) -> int:
    """A request as any program writes it (no engine_id: unrouted)."""
    conn = connect(dsn)
    try:
        return int(
            conn.execute(
                "INSERT INTO requests (verb, target, requested_by) VALUES (?, ?, 'test') RETURNING id", (verb, target)
            ).fetchall()[0]["id"]
        )
    finally:
        conn.close()


def request(dsn: str, request_id: int) -> dict[str, Any]:
    return rows(dsn, "SELECT * FROM requests WHERE id = ?", (request_id,))[0]


def run_row(dsn: str, run_id: int) -> dict[str, Any]:
    return rows(dsn, "SELECT * FROM runs WHERE id = ?", (run_id,))[0]


@contextmanager
def listening(dsn: str) -> Iterator[Callable[[], str | None]]:
    """LISTEN evman from now on; heard() -> the next notification's payload (None after 10 s)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN evman")

        def heard() -> str | None:
            return next((n.payload for n in conn.notifies(timeout=10, stop_after=1)), None)

        yield heard


def eid(engine: Engine) -> int:
    return engine_id(engine)


def started_child(engine: Engine, dsn: str) -> tuple[int, int]:
    """The one running run of `long`/`slow` and its recorded pid (ticking `engine` until it is)."""

    def recorded() -> list[dict[str, Any]] | None:
        engine.tick()
        return rows(dsn, "SELECT id, pid FROM runs WHERE state = 'running' AND pid IS NOT NULL") or None

    found = wait_until(recorded, what="a recorded pid")
    assert len(found) == 1
    return int(found[0]["id"]), int(found[0]["pid"])


def ended(engine: Engine, dsn: str, run_id: int) -> dict[str, Any]:
    def over() -> dict[str, Any] | None:
        engine.tick()
        row = run_row(dsn, run_id)
        return row if row["state"] not in ("waiting", "running") else None

    return wait_until(over, what=f"run {run_id} to end")


def test_kill_of_a_run_another_engine_owns_is_left_for_it_and_kills_its_child(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, LONG, tmp_path, clock)
    a, b = make(), make()
    ask(pg_dsn, "trigger", "long")
    b.tick()
    run_id, pid = started_child(b, pg_dsn)
    assert run_row(pg_dsn, run_id)["engine_id"] == eid(b)
    restart = ask(pg_dsn, "restart", "long")
    a.tick()  # the event's active run is b's: b answers
    assert request(pg_dsn, restart)["engine_id"] == eid(b) and request(pg_dsn, restart)["handled_at"] is None
    b.tick()
    assert request(pg_dsn, restart)["outcome"] == f"run {run_id} of 'long' is still running; kill it first, or wait"
    kill = ask(pg_dsn, "kill", f"run:{run_id}")
    with listening(pg_dsn) as heard:
        a.tick()  # a claims it first: not its run, so it leaves it for b, and that wakes b
        assert heard() == "requests"
    left = request(pg_dsn, kill)
    assert left["handled_at"] is None and left["engine_id"] == eid(b)
    b.tick()
    answered = request(pg_dsn, kill)
    assert (answered["outcome"], answered["detail"]) == ("ok", f"run {run_id} signalled")
    assert ended(b, pg_dsn, run_id)["state"] == "killed"
    wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")


def test_kill_of_an_event_with_runs_on_two_engines_kills_each_on_its_owner(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, LONG, tmp_path, clock)
    a, b = make(), make()
    ask(pg_dsn, "trigger", "long")
    b.tick()
    first, pid = started_child(b, pg_dsn)
    ask(pg_dsn, "trigger", "long")
    a.tick()  # concurrency = "queue" counts b's run: a's waits behind it
    (second,) = rows(pg_dsn, "SELECT * FROM runs WHERE id <> ?", (first,))
    assert second["state"] == "waiting" and second["engine_id"] == eid(a)
    assert second["waiting_reason"] == f"queued behind run {first} (running on engine {eid(b)})"
    kill = ask(pg_dsn, "kill", "long")
    a.tick()
    answered = request(pg_dsn, kill)
    (follow,) = rows(pg_dsn, "SELECT * FROM requests WHERE id > ?", (kill,))
    assert answered["outcome"] == "ok"
    assert answered["detail"] == (
        f"run {second['id']} cancelled; run {first} (running on engine {eid(b)}): asked in request {follow['id']}"
    )
    assert (follow["verb"], follow["target"], follow["engine_id"]) == ("kill", f"run:{first}", eid(b))
    assert follow["handled_at"] is None
    assert run_row(pg_dsn, second["id"])["state"] == "killed"
    b.tick()
    follow = request(pg_dsn, follow["id"])
    assert (follow["outcome"], follow["detail"]) == ("ok", f"run {first} signalled")
    assert ended(b, pg_dsn, first)["state"] == "killed"
    wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")


def test_an_occurrence_is_skipped_and_running_is_true_while_another_engine_runs_the_event(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, SLOW, tmp_path, clock)
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    a.tick()
    first, _ = started_child(a, pg_dsn)
    clock.advance(timedelta(seconds=10))
    ask(pg_dsn, "trigger", "watch")
    b.tick()  # b makes the next occurrence of slow: a runs the last one (concurrency = "skip")
    (second,) = rows(pg_dsn, "SELECT * FROM runs WHERE event = 'slow' AND id <> ?", (first,))
    assert second["engine_id"] == eid(b) and second["state"] == "skipped"
    assert second["reason"] == f"skipped: run {first} is still running on engine {eid(a)} (concurrency=skip)"
    (watch,) = rows(pg_dsn, "SELECT * FROM runs WHERE event = 'watch'")
    assert watch["state"] == "waiting" and "notrunning(slow) is false" in watch["waiting_reason"]
    a.executors.kill(first, by="test")
    ended(a, pg_dsn, first)  # a does not make a second run of watch: b's waits already
    b.tick()
    assert run_row(pg_dsn, watch["id"])["started_at"] is not None
    assert rows(pg_dsn, "SELECT count(*) AS n FROM runs WHERE event = 'watch'") == [{"n": 1}]


def test_replace_of_a_run_another_engine_runs_asks_its_owner_to_kill_it(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(
        pg_dsn,
        SLOW.replace('schedule = "every 10 seconds"', 'schedule = "every 10 seconds"\nconcurrency = "replace"'),
        tmp_path,
        clock,
    )
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    a.tick()
    first, pid = started_child(a, pg_dsn)
    clock.advance(timedelta(seconds=10))
    b.tick()
    (second,) = rows(pg_dsn, "SELECT * FROM runs WHERE event = 'slow' AND id <> ?", (first,))
    assert second["state"] == "waiting" and second["engine_id"] == eid(b)
    assert second["waiting_reason"] == f"queued behind run {first} (running on engine {eid(a)})"
    (asked,) = rows(pg_dsn, "SELECT * FROM requests")
    assert (asked["verb"], asked["target"], asked["engine_id"]) == ("kill", f"run:{first}", eid(a))
    a.tick()
    assert request(pg_dsn, asked["id"])["detail"] == f"run {first} signalled (replaced by run {second['id']})"
    assert ended(a, pg_dsn, first)["state"] == "killed"
    wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")
    b.tick()
    assert run_row(pg_dsn, second["id"])["state"] == "running"


def test_a_request_left_for_an_engine_that_dies_is_answered_by_the_survivor(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, LONG, tmp_path, clock)
    a, b = make(), make()
    ask(pg_dsn, "trigger", "long")
    a.tick()
    run_id, pid = started_child(a, pg_dsn)
    kill = ask(pg_dsn, "kill", f"run:{run_id}")
    b.tick()
    assert request(pg_dsn, kill)["engine_id"] == eid(a)  # left for a, which now stops ticking
    time.sleep(LEASE_S + 0.3)  # a wedged loop: no renewal, its lease runs out
    b.tick()  # takes a over (adopting its command), then answers what was left for a
    answered = request(pg_dsn, kill)
    assert (answered["outcome"], answered["detail"]) == ("ok", f"run {run_id} signalled")
    assert run_row(pg_dsn, run_id)["engine_id"] == eid(b)
    assert ended(b, pg_dsn, run_id)["state"] == "killed"
    wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")
    a.tick()
    assert a.fenced is not None


def test_a_hold_answered_by_one_engine_holds_the_runs_of_another(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, SLOW.replace('run = "sleep 30"', 'call = "builtins:len"'), tmp_path, clock)
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    b.settle()  # b has read slow's spec, and that it is not held
    hold = ask(pg_dsn, "hold", "slow")
    a.tick()
    assert request(pg_dsn, hold)["outcome"] == "ok"
    clock.advance(timedelta(seconds=10))
    b.tick()
    (second,) = rows(pg_dsn, "SELECT * FROM runs WHERE event = 'slow' AND state = 'waiting'")
    assert second["engine_id"] == eid(b) and second["waiting_reason"] == "held"
    ask(pg_dsn, "release", "slow")
    a.tick()
    b.settle()
    assert run_row(pg_dsn, second["id"])["started_at"] is not None


def test_concurrency_of_a_burst_costs_one_read_of_the_other_engines_runs(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    burst = "".join(
        f'[[event]]\nname = "e{i:02d}"\ncall = "builtins:abs"\nschedule = "every 10 seconds"\n' for i in range(30)
    )
    load(pg_dsn, SLOW + burst, tmp_path, clock)
    a, b = make(), make()
    clock.advance(timedelta(seconds=10))
    a.tick()  # a claims every due event: slow runs on a, the burst too
    started_child(a, pg_dsn)
    wait_until(
        lambda: (
            a.tick() is not None
            and b.tick() is not None
            and rows(pg_dsn, "SELECT count(*) AS n FROM runs WHERE state IN ('waiting', 'running')") == [{"n": 1}]
        ),
        what="the burst to end, slow still running",
    )
    clock.advance(timedelta(seconds=10))
    before = b.elsewhere_reads
    b.tick()  # b makes all 31 next occurrences
    assert b.elsewhere_reads - before == 1
    made = rows(pg_dsn, "SELECT event, state FROM runs WHERE engine_id = ?", (eid(b),))
    assert len(made) == 31
    assert [r["state"] for r in made if r["event"] == "slow"] == ["skipped"]


def test_evman_kill_of_an_event_on_two_engines_prints_each_owners_answer(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    from evman.console.mailbox import send_request

    load(pg_dsn, LONG, tmp_path, clock)
    a, b = make(), make()
    ask(pg_dsn, "trigger", "long")
    b.tick()
    first, pid = started_child(b, pg_dsn)
    ask(pg_dsn, "trigger", "long")
    a.tick()
    loops = [threading.Thread(target=e.run, daemon=True) for e in (a, b)]
    for loop in loops:
        loop.start()
    store = open_store(pg_dsn)
    try:
        ok, said = send_request(store, "kill", "long", requested_by="test", wait_s=20)
    finally:
        store.close()
        for e in (a, b):
            e.stop()
        for loop in loops:
            loop.join(timeout=30)
    assert ok, said  # whichever engine claims it answers for its run, and asks the other
    assert re.search(r"on engine \d+\): asked in request \d+: ok, run \d+ (signalled|cancelled)\)$", said), said
    assert {r["state"] for r in rows(pg_dsn, "SELECT state FROM runs")} == {"killed"}
    wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")
