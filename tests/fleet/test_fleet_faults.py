"""Several engines under faults (issue 24): a repeated dedupe key whose transactions interleave,
a run made by one engine and started by another that then dies, `queue` after a takeover when
run ids come in blocks, and a graceful stop that waits longer than a lease. Real engines, real
PostgreSQL, real commands; schedules on a fake clock, leases on the database's clock."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import open_store
from evman.engine.store.pg_store import PgStore
from tests.fleet.common import LEASE_S, Make, load
from tests.outside import rows, wait_until


def dead_pid() -> int:
    """A pid that was this host's and is gone: its engine is taken over at once, no waiting."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def token(engine: Engine) -> int:
    assert engine.fleet is not None and engine.fleet.token is not None
    return engine.fleet.token.engine_id


# -- 1. a repeated dedupe key -------------------------------------------------------------------

ONE_JOB = """
[defaults]
timezone = "UTC"
[[event]]
name = "job"
call = "builtins:len"
concurrency = "queue"
"""


def test_a_repeated_key_is_acted_on_once_whatever_the_commit_order(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """Program A inserts key order-42 first (the lower id) but commits after program B; the engine
    answers B, then A's row as a duplicate of B's: one run, not two."""
    load(pg_dsn, ONE_JOB, tmp_path, clock)
    engine = make()
    insert = (
        "INSERT INTO requests (verb, target, requested_by, dedupe_key) VALUES ('trigger', 'job', %s, %s) RETURNING id"
    )
    with psycopg.connect(pg_dsn) as slow, psycopg.connect(pg_dsn, autocommit=True) as quick:
        first = slow.execute(insert, ("program A", "order-42")).fetchone()[0]  # type: ignore[index]
        second = quick.execute(insert, ("program B", "order-42")).fetchone()[0]  # type: ignore[index]
        assert first < second
        engine.tick()
        slow.commit()
    engine.tick()
    answers = {r["id"]: r for r in rows(pg_dsn, "SELECT id, outcome, detail FROM requests")}
    assert answers[second]["outcome"] == "ok"
    assert answers[first]["outcome"] == f"duplicate of request {second}; not acted on again"
    assert len(rows(pg_dsn, "SELECT id FROM runs")) == 1


def test_two_engines_deciding_one_key_at_once_act_on_it_once(pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    """Engine 1 is answering the first row of key k (its tick not committed yet) when engine 2
    claims the second row: the key's claim committed before engine 1 locked anything, so engine 2
    knows at once, without waiting on engine 1's locks, that the key is the first row's. Engine
    1's tick then fails: the row stays engine 1's to answer, and still holds the key."""
    load(pg_dsn, ONE_JOB, tmp_path, clock)
    one, two = open_store(pg_dsn), open_store(pg_dsn)
    assert isinstance(one, PgStore) and isinstance(two, PgStore)
    try:
        first_engine, _ = one.register_engine(host="h1", pid=1, tags=None, lease_s=30.0, tick_s=1.0, version="t")
        second_engine, _ = two.register_engine(host="h2", pid=2, tags=None, lease_s=30.0, tick_s=1.0, version="t")
        first = one.add_request("trigger", "job", dedupe_key="k")
        (claimed,) = one.claim_requests(first_engine)
        assert one.dedupe_holder("k", int(claimed["id"])) == first  # engine 1's: it acts
        second = two.add_request("trigger", "job", dedupe_key="k")
        started = time.monotonic()
        (other,) = two.claim_requests(second_engine)  # engine 1 answers the first row
        assert int(other["id"]) == second
        assert two.dedupe_holder("k", second) == first  # a duplicate: not acted on
        assert time.monotonic() - started < 0.5
        two.drop_claims()
        one.drop_claims()  # engine 1's tick fails: its row is still its own, and holds the key
        assert [int(r["id"]) for r in two.claim_requests(second_engine)] == [second]
        two.drop_claims()
        assert [int(r["id"]) for r in one.claim_requests(first_engine)] == [first]  # the second is engine 2's
        one.drop_claims()
    finally:
        one.close()
        two.close()


# -- 2. made by one engine, started by another ---------------------------------------------------------


def test_a_run_started_by_another_engine_is_judged_by_the_log_its_command_wrote(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A makes a waiting run and dies; B (another working directory, another log folder) takes it
    over, starts it and dies while it runs; C takes over once the command exited 0. The run's
    log_path is the file the command wrote, C finds its exit record there: succeeded, with its
    output, and not run a second time although the event says on_lost = "rerun"."""
    load(
        pg_dsn,
        """
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "cc-2"
        shell = "echo wrote-by-b; sleep 0.3"
        on_lost = "rerun"
        """,
        tmp_path,
        clock,
    )
    store = open_store(pg_dsn)
    store.add_request("hold", "cc-2")
    store.add_request("trigger", "cc-2")
    a = make(pid=dead_pid(), logs_dir=tmp_path / "a" / "logs")
    a.tick()
    (made,) = rows(pg_dsn, "SELECT * FROM runs")
    assert made["state"] == "waiting" and made["engine_id"] == token(a)
    b = make(pid=dead_pid(), logs_dir=tmp_path / "b" / "logs")  # joining, it takes A over
    store.add_request("release", "cc-2")
    store.close()
    b.tick()
    (started,) = rows(pg_dsn, "SELECT * FROM runs")
    assert started["state"] == "running" and started["engine_id"] == token(b)
    wait_until(lambda: b.executors.running_count() == 0, timeout=10, what="the command to end")
    c = make(logs_dir=tmp_path / "c" / "logs")  # B's pid is gone: C takes it over as it joins
    c.settle(clock.now())
    assert [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs ORDER BY id")] == ["succeeded"]
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert (run["exit_code"], run["engine_id"]) == (0, token(c)), run["reason"]
    assert run["log_path"] == started["log_path"] and run["log_path"].startswith(str(tmp_path / "b" / "logs"))
    assert Path(run["log_path"]).read_text() == "wrote-by-b\n" and run["output_tail"] == "wrote-by-b\n"
    assert rows(pg_dsn, "SELECT kind FROM alerts") == []


# -- 3. queue after a takeover, ids in blocks ----------------------------------------------------------


QUEUED = """
[defaults]
timezone = "UTC"
[[event]]
name = "q"
run = "sleep 30"
schedule = "every 10 seconds"
concurrency = "queue"
"""
"""An event whose runs queue, one every 10 s, each running long enough to be taken over."""


def test_queue_waits_behind_a_taken_over_run_with_a_higher_id(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """B (ids from the second block of 64) starts occurrence 1 and dies; A takes it over (its
    command still runs: adopted), then makes occurrence 2 with a LOWER id from its own block.
    Occurrence 2 fell due later: it waits behind occurrence 1, never runs beside it."""
    load(pg_dsn, QUEUED, tmp_path, clock)
    a = make()
    a.fleet.next_id()  # type: ignore[union-attr]  # A holds the first block of ids
    b = make(pid=dead_pid())
    clock.advance(timedelta(seconds=10))
    b.tick()
    (first,) = rows(pg_dsn, "SELECT * FROM runs")
    assert first["state"] == "running" and first["engine_id"] == token(b)
    clock.advance(timedelta(seconds=10))
    a.tick()  # takes B over (its pid is gone), adopts occurrence 1, makes occurrence 2
    runs = rows(pg_dsn, "SELECT id, state, engine_id, scheduled_for FROM runs ORDER BY scheduled_for")
    assert [r["engine_id"] for r in runs] == [token(a), token(a)]
    assert runs[1]["id"] < runs[0]["id"], "the later occurrence has the lower id (blocks of 64)"
    a.tick()
    states = [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs ORDER BY scheduled_for")]
    assert states == ["running", "waiting"]
    (later,) = [r for r in a.active_runs() if r.id == runs[1]["id"]]
    assert later.waiting_reason == f"queued behind run {runs[0]['id']} (running)"


def test_queue_across_engines_survives_a_takeover_of_the_queued_run(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A runs occurrence 1; B makes occurrence 2 (queued behind A's run) and dies; C takes
    occurrence 2 over. What it waited behind is read from the database, not kept in B's memory:
    C does not start it while A's run still runs."""
    load(pg_dsn, QUEUED, tmp_path, clock)
    a = make()
    clock.advance(timedelta(seconds=10))
    a.tick()
    b = make(pid=dead_pid())
    clock.advance(timedelta(seconds=10))
    b.tick()
    assert [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs ORDER BY scheduled_for")] == ["running", "waiting"]
    c = make()  # takes B over as it joins
    c.tick()
    c.tick()
    runs = rows(pg_dsn, "SELECT state, engine_id FROM runs ORDER BY scheduled_for")
    assert runs == [{"state": "running", "engine_id": token(a)}, {"state": "waiting", "engine_id": token(c)}]


# -- 5. a graceful stop longer than a lease ---------------------------------------------------------------


def test_a_graceful_stop_waiting_longer_than_its_lease_keeps_it_and_is_not_fenced(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A is stopped while its command runs 1.5 leases; it waits for it (grace 5 s) while B ticks
    all along. A keeps its lease while it waits, records the end itself and leaves: not fenced,
    B takes over a stopped engine with nothing running, no takeover race."""
    load(
        pg_dsn,
        f"""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "long"
        run = "sleep {1.5 * LEASE_S}"
        """,
        tmp_path,
        clock,
    )
    a, b = make(stop_grace_s=5.0), make()
    open_store(pg_dsn).add_request("trigger", "long")
    a.tick()
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert run["state"] == "running" and run["engine_id"] == token(a)
    done = threading.Event()

    def survivor() -> None:
        while not done.is_set():
            b.tick()
            time.sleep(0.05)

    thread = threading.Thread(target=survivor)
    thread.start()
    try:
        a.stop()
        a.shutdown()
    finally:
        done.set()
        thread.join()
    assert a.fenced is None
    (run,) = rows(pg_dsn, "SELECT * FROM runs")
    assert (run["state"], run["engine_id"]) == ("succeeded", token(a))
    (row,) = rows(pg_dsn, f"SELECT state, reason FROM engines WHERE id = {token(a)}")
    assert row["state"] == "stopped" and row["reason"] in (None, "stopped")
