"""Graceful stop drill: SIGTERM while commands run. `evman --no-ui` exits 0; a command that
ends within --grace is waited for and recorded; one that outlives it stays recorded as running
with its pid, the next engine watches it, and it ends as it really ended (its supervisor kept
its exit status), never `running` for ever; one that died while no engine ran is recorded at
the next start with how it died."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.drills.common import REPORTS, OrphanReaper, evman, process_alive, rows, start_engine, wait_until

DEFS = """
[defaults]
timezone = "UTC"

[[event]]
name = "short"
run = "sleep {short}"

[[event]]
name = "outlives"
run = "sleep {long}"

[[event]]
name = "after-short"
run = "true"
requires = "success(short)"
"""


def _run(db: Path, event: str) -> dict:
    found = rows(db, "SELECT * FROM runs WHERE event = ? ORDER BY id DESC LIMIT 1", (event,))
    return found[0] if found else {}


def _drill(tmp_path: Path, *, short_s: float, long_s: float, grace_s: float) -> None:
    db, log = tmp_path / "stop.db", tmp_path / "engine.log"
    defs = tmp_path / "stop.toml"
    defs.write_text(DEFS.format(short=short_s, long=long_s))
    assert evman("load", str(defs), "--db", str(db)).returncode == 0
    with OrphanReaper() as reaper:
        engine = start_engine(db, "--tick", "0.2", "--grace", str(grace_s), log=log)
        reaper.ours.add(engine.pid)
        for event in ("short", "outlives"):
            assert evman("trigger", event, "--db", str(db)).returncode == 0
        wait_until(
            lambda: _run(db, "short").get("pid") and _run(db, "outlives").get("pid"),
            timeout=15,
            what="both commands to run",
        )
        outlives_pid = int(_run(db, "outlives")["pid"])

        stop_at = time.monotonic()
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(grace_s + 15)
        took = time.monotonic() - stop_at
        assert code == 0, log.read_text()[-2000:]
        assert took < grace_s + 5, f"stopping took {took:.1f} s with --grace {grace_s}"

        # the short command ended within the grace: waited for and recorded
        assert _run(db, "short")["state"] == "succeeded"
        # its follower ran before the stop, or waits for the next engine: a stopping engine
        # does not start it (and leave it running unwatched)
        assert _run(db, "after-short").get("state") in (None, "waiting", "succeeded")
        # the long one outlived the grace: still running, its pid recorded and alive
        left = _run(db, "outlives")
        assert left["state"] == "running" and left["pid"] == outlives_pid
        assert process_alive(outlives_pid)
        assert "left 1 run(s) running at stop" in log.read_text()

        # the next engine watches it; when it ends, its supervisor's exit record says how
        engine = start_engine(db, "--tick", "0.2", "--grace", str(grace_s), log=log)
        reaper.ours.add(engine.pid)
        wait_until(
            lambda: _run(db, "after-short").get("state") == "succeeded",
            timeout=15,
            what="the next engine to start the follower",
        )
        assert _run(db, "outlives")["state"] in ("running", "succeeded")  # a slow machine: ended already
        wait_until(
            lambda: _run(db, "outlives")["state"] != "running",
            timeout=long_s + 15,
            what="the watched command's run to end",
        )
        ended = _run(db, "outlives")
        assert (ended["state"], ended["exit_code"]) == ("succeeded", 0), ended

        # a command that dies while no engine runs is recorded at the next start, as it died
        assert evman("trigger", "outlives", "--db", str(db)).returncode == 0
        wait_until(
            lambda: _run(db, "outlives")["state"] == "running" and _run(db, "outlives")["pid"],
            timeout=15,
            what="a new run of outlives",
        )
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(grace_s + 15) == 0
        orphan = _run(db, "outlives")
        assert orphan["state"] == "running"
        import os

        os.killpg(int(orphan["pid"]), signal.SIGKILL)
        wait_until(lambda: not process_alive(int(orphan["pid"])), timeout=5, what="the command to die")
        engine = start_engine(db, "--tick", "0.2", log=log)
        reaper.ours.add(engine.pid)
        wait_until(
            lambda: _run(db, "outlives")["state"] == "failed", timeout=15, what="the dead command's run to be recorded"
        )
        assert _run(db, "outlives")["reason"] == "ended by signal SIGKILL"
        engine.send_signal(signal.SIGINT)  # SIGINT stops it cleanly too
        assert engine.wait(15) == 0
        assert rows(db, "SELECT count(*) AS n FROM runs WHERE state = 'running'")[0]["n"] == 0
        assert rows(db, "SELECT stopped_at FROM engine")[0]["stopped_at"] is not None
    assert "Traceback" not in log.read_text()
    REPORTS.append(
        f"graceful stop (--grace {grace_s:g}): exit 0 in {took:.1f} s with a {short_s:g} s and a "
        f"{long_s:g} s command running; the short one recorded succeeded, the long one watched by "
        f"the next engine and recorded succeeded from its exit record; a command killed while no engine ran: "
        f"recorded failed (SIGKILL) at start"
    )


def test_graceful_stop_short(tmp_path: Path) -> None:
    _drill(tmp_path, short_s=0.5, long_s=5.0, grace_s=1.0)


@pytest.mark.long
def test_graceful_stop_long(tmp_path: Path) -> None:
    _drill(tmp_path, short_s=5.0, long_s=20.0, grace_s=10.0)
