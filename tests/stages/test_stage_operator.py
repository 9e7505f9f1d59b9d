"""Operator verbs through `requests` rows: hold, release, kill, ack, restart; each records who asked."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.outside import found
from tests.stages.stage_helpers import alerts, ask, evman, runs, trigger, wait_running, wait_until

pytestmark = pytest.mark.backends


DEFS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "digest"
    run = "true"
    schedule = "every 1 hours"
    [[event]]
    name = "render"
    run = "sleep 30"
    [[event]]
    name = "upload"
    shell = "test -e ok"
    on_failure = { retries = 1, backoff = "1m", prepare = "echo $$ > prepare.pid; exec sleep 30" }
"""


def test_hold_keeps_waiting_runs_waiting_and_release_lets_them_start(
    engine_factory, clock: FakeClock, store: Store, db_path: Path
) -> None:
    engine = engine_factory(DEFS)
    row = ask(engine, "hold", "digest", by="carol", now=clock.now())
    assert (row["outcome"], row["detail"]) == ("ok", "digest held")
    assert found(store.event_row("digest"))["held_by"] == f"carol (request {row['id']})"
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        engine.settle(clock.now())
    waiting, *skipped = runs(store, "digest")
    assert (waiting["state"], waiting["waiting_reason"]) == ("waiting", "held")
    assert [r["state"] for r in skipped] == ["skipped", "skipped"], "concurrency=skip while one waits"
    shown = evman(db_path, "show", "digest", "--json")
    assert (shown["held"], shown["held_by"], shown["waiting_reason"]) == (True, f"carol (request {row['id']})", "held")
    row = ask(engine, "release", "digest", by="dan", now=clock.now())
    assert (row["outcome"], row["detail"]) == ("ok", "digest released")
    engine.settle(clock.now())
    assert found(store.run(waiting["id"]))["state"] == "succeeded"
    assert found(store.event_row("digest"))["held"] == 0


def test_kill_a_running_run_records_who_killed_it(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(DEFS)
    run_id = trigger(engine, "render", now=clock.now())
    wait_running(engine, clock, run_id)
    pid = found(store.run(run_id))["pid"]
    row = ask(engine, "kill", f"run:{run_id}", by="bob", now=clock.now())
    assert (row["outcome"], row["detail"]) == ("ok", f"run {run_id} signalled")
    engine.settle(clock.now())
    run = found(store.run(run_id))
    assert run["state"] == "killed"
    assert run["reason"] == f"killed: operator bob (request {row['id']})"
    assert not _alive(pid)
    again = ask(engine, "kill", f"run:{run_id}", by="bob", now=clock.now())
    assert "already finished (killed)" in again["outcome"]


def test_kill_a_waiting_run_cancels_it(engine_factory, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(DEFS)
    ask(engine, "hold", "render", now=clock.now())
    run_id = trigger(engine, "render", now=clock.now())
    row = ask(engine, "kill", "render", by="bob", now=clock.now())
    assert row["detail"] == f"run {run_id} cancelled"
    run = found(store.run(run_id))
    assert (run["state"], run["started_at"]) == ("killed", None)
    assert run["reason"] == f"killed before it started by bob (request {row['id']})"


def test_kill_a_run_while_its_prepare_runs_stops_the_prepare_too(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(DEFS)
    trigger(engine, "upload", now=clock.now())
    engine.settle(clock.now())
    clock.advance(timedelta(minutes=1))
    engine.tick(clock.now())
    retry = runs(store, "upload")[-1]
    assert retry["waiting_reason"].startswith("preparing: ")
    marker = tmp_path / "prepare.pid"
    wait_until(lambda: marker.exists() and marker.read_text().strip() != "", what="prepare to start")
    prepare_pid = int(marker.read_text())
    row = ask(engine, "kill", "upload", by="bob", now=clock.now())
    assert row["outcome"] == "ok"
    engine.settle(clock.now())
    assert found(store.run(retry["id"]))["state"] == "killed"
    wait_until(lambda: not _alive(prepare_pid), what="the prepare process to end")


def test_ack_by_event_and_by_alert_records_who(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(DEFS.replace("retries = 1", "retries = 0"))
    trigger(engine, "upload", now=clock.now())
    engine.settle(clock.now())
    (failed,) = alerts(store, "upload", "failed")
    row = ask(engine, "ack", "upload", by="frank", now=clock.now())
    assert (row["outcome"], row["detail"]) == ("ok", f"acknowledged alert:{failed['id']}")
    (failed,) = alerts(store, "upload", "failed")
    assert failed["acknowledged_by"] == f"frank (request {row['id']})"
    assert failed["acknowledged_at"] is not None and failed["status"] == "open"
    listed = {a["id"]: a for a in evman(db_path, "alerts", "--json")}
    assert listed[failed["id"]]["acknowledged_by"] == f"frank (request {row['id']})"
    again = ask(engine, "ack", f"alert:{failed['id']}", by="gina", now=clock.now())
    assert again["outcome"] == f"alert {failed['id']} was acknowledged already by frank (request {row['id']})"
    assert "no unacknowledged open alert" in ask(engine, "ack", "upload", now=clock.now())["outcome"]


def test_restart_refuses_a_run_that_succeeded_and_an_unknown_event(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(DEFS)
    run_id = trigger(engine, "digest", now=clock.now())
    engine.settle(clock.now())
    row = ask(engine, "restart", f"run:{run_id}", now=clock.now())
    assert "only failed, killed, lost, missed or skipped runs restart" in row["outcome"]
    assert "unknown event 'nope'" in ask(engine, "trigger", "nope", now=clock.now())["outcome"]
    assert len(runs(store, "digest")) == 1


def test_restart_a_missed_run_opens_a_fresh_window(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "morning"
        run = "true"
        requires = 'exists("gate.flag")'
        window = { latest = "00:30" }
    """)
    run_id = trigger(engine, "morning", now=clock.now())
    clock.advance(timedelta(minutes=30))
    engine.settle(clock.now())
    assert found(store.run(run_id))["state"] == "missed"
    (tmp_path / "gate.flag").touch()
    row = ask(engine, "restart", "morning", by="hana", now=clock.now())
    assert row["outcome"] == "ok", row["outcome"]
    engine.settle(clock.now())
    again = runs(store, "morning")[-1]
    assert (again["trigger"], again["repeats_run_id"], again["state"]) == ("restart", run_id, "succeeded")
    assert again["triggered_by"] == f"hana (request {row['id']})"
    (missed,) = alerts(store, "morning", "missed")
    assert missed["status"] == "resolved"
    (recovered,) = alerts(store, "morning", "recovered")
    assert recovered["run_id"] == again["id"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
