"""Crash recovery with real processes: `evman --no-ui` SIGKILLed while a command runs, then
started again; one engine per database; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock, iso, parse_iso
from evman.engine.engine import Engine
from evman.engine.store import open_store
from tests.engine_cli import (
    cli,
    connect,
    evman_argv,
    insert_request,
    is_zombie,
    kill_group,
    kill_running_commands,  # noqa: F401 (an autouse fixture)
    load_defs,
    log_of,
    rows,
    runs,
    start_engine_process,
    wait_until,
)

pytestmark = pytest.mark.backends

DEFS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "long"
    run = "sleep 60"
    on_failure = { retries = 1, backoff = "1h" }
"""
ENGINE_ARGS = ("--tick", "0.2", "--grace", "0.5")


@pytest.fixture
def engines() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Engine processes a test starts; SIGKILLed at teardown if still running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start(engines: list[subprocess.Popen[bytes]], db: Path) -> subprocess.Popen[bytes]:
    proc = start_engine_process(db, *ENGINE_ARGS)
    engines.append(proc)
    return proc


def running_pid(db: Path) -> int:
    def found() -> int | None:
        got = runs(db, "long")
        return got[0]["pid"] if got and got[0]["state"] == "running" else None

    return int(wait_until(found, what="the long command to run with a recorded pid"))


def crash_while_running(engines: list[subprocess.Popen[bytes]], db: Path, tmp_path: Path) -> int:
    """Load, trigger, start an engine, wait for the command, SIGKILL the engine; the command's pid."""
    load_defs(db, DEFS, tmp_path, datetime.now(UTC))
    insert_request(db, "trigger", "long")
    first = start(engines, db)
    pid = running_pid(db)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    return pid


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def assert_no_occurrence_twice(db: Path) -> None:
    assert (
        rows(
            db,
            "SELECT event, scheduled_for, attempt, count(*) AS n FROM runs "
            "GROUP BY event, scheduled_for, attempt HAVING count(*) > 1",
        )
        == []
    )


def supervisor_of(pid: int) -> int:
    """The supervisor that started command `pid` (its parent)."""
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def test_engine_killed_then_its_command_killed_the_real_end_is_recorded_and_retried(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    """The command dies while no engine runs; its supervisor still saw how: the next engine
    records that (failed, by SIGKILL), not `lost`, and the failure policy retries it."""
    pid = crash_while_running(engines, db_path, tmp_path)
    kill_group(pid)  # the command dies after its engine
    wait_until(lambda: is_zombie(pid) or not Path(f"/proc/{pid}").exists(), what="the command to die")
    second = start(engines, db_path)
    failed, retry = wait_until(
        lambda: runs(db_path, "long") if len(runs(db_path, "long")) == 2 else None, what="the failed run and its retry"
    )
    assert (failed["state"], failed["exit_code"], failed["reason"]) == ("failed", -9, "ended by signal SIGKILL")
    assert failed["ended_at"] is not None
    assert (retry["trigger"], retry["attempt"], retry["repeats_run_id"], retry["state"]) == (
        "retry",
        2,
        failed["id"],
        "waiting",
    )
    assert retry["scheduled_for"] == failed["scheduled_for"]
    not_before = parse_iso(retry["not_before"])
    assert not_before is not None and not_before > datetime.now(UTC) + timedelta(minutes=50)
    stop(second)
    assert len(runs(db_path, "long")) == 2  # nothing ran twice, nothing new started
    assert_no_occurrence_twice(db_path)


@pytest.mark.sqlite_only  # on PostgreSQL a lost run is retried only with on_lost = "rerun" (tests/fleet)
def test_engine_and_supervisor_killed_and_command_gone_the_run_is_lost_and_retried(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    """Nobody saw the end (the supervisor died too): only then is the run `lost`."""
    pid = crash_while_running(engines, db_path, tmp_path)
    os.kill(supervisor_of(pid), signal.SIGKILL)
    kill_group(pid)
    wait_until(lambda: is_zombie(pid) or not Path(f"/proc/{pid}").exists(), what="the command to die")
    second = start(engines, db_path)
    wait_until(lambda: runs(db_path, "long")[0]["state"] == "lost", what="the run to be marked lost")
    lost, retry = wait_until(
        lambda: runs(db_path, "long") if len(runs(db_path, "long")) == 2 else None, what="the retry run"
    )
    assert lost["reason"] == (f"lost: its process (pid {pid}) was gone when the engine restarted, with no exit record")
    assert (retry["trigger"], retry["attempt"], retry["repeats_run_id"]) == ("retry", 2, lost["id"])
    stop(second)
    assert_no_occurrence_twice(db_path)


def test_a_command_that_finished_while_no_engine_ran_is_recorded_as_it_ended(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    """SIGKILL the engine under a short command; it ends (exit 3) with no engine; the next
    engine records exit 3 from its exit record, pages, and follows on_failure: no `lost`."""
    load_defs(
        db_path,
        """
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "short"
        shell = "sleep 1; echo done; exit 3"
        on_failure = { trigger = ["after"] }
        [[event]]
        name = "after"
        run = "true"
    """,
        tmp_path,
        datetime.now(UTC),
    )
    insert_request(db_path, "trigger", "short")
    first = start(engines, db_path)
    pid = wait_until(lambda: (r := runs(db_path, "short")) and r[0]["pid"], what="the command's pid")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wait_until(
        lambda: not Path(f"/proc/{pid}").exists() or is_zombie(int(pid)),
        timeout=20,
        what="the command to end by itself",
    )
    second = start(engines, db_path)
    wait_until(
        lambda: [r["state"] for r in runs(db_path)] == ["failed", "succeeded"],
        timeout=30,
        what="the real outcome and its on_failure follower",
    )
    (short,) = runs(db_path, "short")
    assert (short["exit_code"], short["reason"]) == (3, "exit code 3")
    assert "done" in (short["output_tail"] or "")
    assert [a["kind"] for a in rows(db_path, "SELECT kind FROM alerts WHERE event = 'short'")] == ["failed"]
    stop(second)
    log = log_of(db_path).read_text()  # beside a file, or in the temp folder for PostgreSQL
    assert f"(pid {pid}) ended while no engine ran (exit 3); recording it" in log


def test_engine_killed_but_command_alive_the_run_is_adopted(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    pid = crash_while_running(engines, db_path, tmp_path)
    try:
        second = start(engines, db_path)
        log = log_of(db_path)
        wait_until(
            lambda: f"(pid {pid}) outlived the previous engine; watching it" in log.read_text(),
            what="the new engine to adopt the command",
        )
        assert [r["state"] for r in runs(db_path, "long")] == ["running"]
        killed = cli("kill", "long", "--db", str(db_path))
        assert killed.returncode == 0, killed.stderr
        assert "kill long: ok" in killed.stdout
        wait_until(lambda: runs(db_path, "long")[0]["state"] == "killed", what="the adopted run killed")
        wait_until(lambda: is_zombie(pid) or not Path(f"/proc/{pid}").exists(), what="the command to end")
        stop(second)
    finally:
        kill_group(pid)
    assert len(runs(db_path, "long")) == 1  # killed is not failed: no retry
    assert_no_occurrence_twice(db_path)


@pytest.mark.sqlite_only  # on PostgreSQL a second engine joins the first (tests/fleet)
def test_a_second_engine_is_refused_while_the_first_is_live_and_sigterm_exits_0(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    load_defs(db_path, DEFS, tmp_path, datetime.now(UTC))
    first = start(engines, db_path)
    wait_until(
        lambda: rows(db_path, "SELECT pid FROM engine WHERE pid = ? AND stopped_at IS NULL", (first.pid,)),
        what="the first engine to claim the database",
    )
    second = subprocess.run(evman_argv("--no-ui", "--db", str(db_path)), capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert f"driven by another engine (pid {first.pid} on" in second.stderr
    assert "Traceback" not in second.stderr
    stop(first)
    (row,) = rows(db_path, "SELECT pid, stopped_at FROM engine")
    assert row["pid"] == first.pid and row["stopped_at"] is not None


def test_a_run_recorded_running_without_a_pid_is_lost_not_restarted(
    db_path: Path, tmp_path: Path, backend: str
) -> None:
    """A crash between recording `running` and spawning leaves no pid: never a double start."""
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    load_defs(db_path, DEFS, tmp_path, now)
    conn = connect(db_path)
    conn.execute(
        "INSERT INTO runs (event, state, trigger, attempt, scheduled_for, created_at, "
        "started_at, host) VALUES ('long', 'running', 'trigger', 1, ?, ?, ?, ?)",
        (iso(now), iso(now), iso(now), os.uname().nodename),
    )
    conn.close()
    engine = Engine(open_store(db_path), clock=FakeClock(now + timedelta(seconds=5)), logs_dir=tmp_path / "logs")
    try:
        engine.start()
        engine.tick()
    finally:
        engine.executors.shutdown(wait_s=0)
    got = runs(db_path, "long")
    assert got[0]["state"] == "lost"
    assert got[0]["reason"] == "lost: the engine stopped before it recorded the process"
    # SQLite retries a lost run as its policy says; with several engines (PostgreSQL) only
    # on_lost = "rerun" runs it again
    assert [(r["attempt"], r["state"]) for r in got[1:]] == ([(2, "waiting")] if backend == "sqlite" else [])


def test_sigterm_while_a_command_runs_exits_0_and_leaves_the_run_recorded(
    engines: list[subprocess.Popen[bytes]], db_path: Path, tmp_path: Path
) -> None:
    load_defs(db_path, DEFS, tmp_path, datetime.now(UTC))
    insert_request(db_path, "trigger", "long")
    engine = start(engines, db_path)
    pid = running_pid(db_path)
    try:
        stop(engine)  # waits --grace 0.5 s for the command, then leaves it
        (run,) = runs(db_path, "long")
        assert (run["state"], run["pid"]) == ("running", pid)  # recorded for the next engine
        assert Path(f"/proc/{pid}").exists() and not is_zombie(pid)
        log = log_of(db_path).read_text()
        assert "SIGTERM received" in log
        assert f"left 1 run(s) running at stop (ids {run['id']}); the next engine reconciles them" in log
    finally:
        kill_group(pid)
