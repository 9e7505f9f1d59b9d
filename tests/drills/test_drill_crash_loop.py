"""Crash loop drill (retention on, compressed: tests/drills/crash_retention.py): `evman --no-ui` SIGKILLed at random moments and restarted; afterwards one
run chain per occurrence, nothing left running, every failure paged, every request handled.
The drill runs in a process of its own (it makes itself a child subreaper to reap the
orphaned commands of the killed engines, as init would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.drills.common import REPORTS, ROOT


def _drill(tmp_path: Path, *args: str, timeout: float) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.drills.crash_loop", "--dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    REPORTS.append(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr


def test_crash_loop_short(tmp_path: Path) -> None:
    _drill(
        tmp_path, "--kills", "6", "--groups", "3", "--max-up", "3", timeout=120
    )  # few events, more runs each: retention acts


@pytest.mark.long
@pytest.mark.timeout(1800)
def test_crash_loop_long(tmp_path: Path) -> None:
    _drill(tmp_path, "--kills", "60", "--groups", "50", timeout=1700)


# -- the two holes the crash loop found, each pinned on its own ------------------------------------

DEFS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "long"
    run = "sleep 30"
    [[event]]
    name = "quick"
    run = "true"
"""


def test_a_command_whose_pid_was_never_recorded_is_found_and_watched(engine_factory, store, clock) -> None:
    """The engine died between starting a command and recording its pid: the next engine finds
    the live command by the run it names in its environment and watches it, instead of marking
    the run lost and letting a retry run beside it."""
    from datetime import UTC, datetime

    from tests.drills.common import kill_group

    clock.set(datetime.now(UTC))  # the command's real start time must match the run's
    first = engine_factory(DEFS, pid=2**22 + 7)  # a pid that is not alive: the next engine may take over
    store.add_request("trigger", "long", requested_by="drill")
    first.tick(clock.now())
    row = store.run(1)
    assert row["state"] == "running" and row["pid"]
    pid = int(row["pid"])
    try:
        first.executors.shutdown(wait_s=0)  # the engine is gone; its command is not
        with store.transaction() as conn:
            conn.execute("UPDATE runs SET pid = NULL WHERE id = 1")  # as if it died before recording it
        second = engine_factory()
        assert store.run(1)["state"] == "running"
        assert store.run(1)["pid"] == pid
        assert [r.id for r in second.active_runs()] == [1]
    finally:
        kill_group(pid)


def test_a_stopping_engine_starts_nothing(engine_factory, store, clock) -> None:
    """SIGTERM's last tick records what ended; it does not start runs it would then abandon."""
    engine = engine_factory(DEFS)
    store.add_request("trigger", "quick", requested_by="drill")
    engine.stop()
    engine.shutdown()
    row = store.run(1)
    assert row["state"] == "waiting" and row["pid"] is None and row["started_at"] is None
