"""Drill: SIGKILL the engine in the middle of a backfill, start another, backfill an overlapping
range again: every slot runs exactly once (the command writes its EVMAN_SCHEDULED_FOR)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.engine_cli import cli, load_defs, start_engine_process
from tests.outside import rows, wait_until

DEFS = """
[[event]]
name = "hourly"
shell = "echo $EVMAN_SCHEDULED_FOR >> {out}; sleep 0.4"
schedule = "0 * * * *"
timezone = "UTC"
"""


def live(db: Path, pid: int) -> None:
    wait_until(lambda: any(r["pid"] == pid for r in rows(db, "SELECT pid FROM engine")), timeout=30, what="the engine")


def test_a_killed_backfill_then_an_overlapping_one_runs_each_slot_once(tmp_path: Path) -> None:
    db, out = tmp_path / "evman.db", tmp_path / "slots.txt"
    load_defs(db, DEFS.format(out=out), tmp_path, datetime.now(UTC))
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    engine = start_engine_process(db)
    try:
        live(db, engine.pid)
        done = cli(
            "backfill",
            "hourly",
            "--from",
            f"{day}T00:00",
            "--to",
            f"{day}T11:00",
            "--max-parallel",
            "2",
            "--db",
            str(db),
        )
        assert done.returncode == 0 and "12 occurrence(s) queued" in done.stdout, done.stdout + done.stderr
        wait_until(lambda: out.exists() and len(out.read_text().split()) >= 4, timeout=30, what="four slots to run")
        os.kill(engine.pid, signal.SIGKILL)  # in the middle: some ran, some run, some wait
        engine.wait(10)
        engine = start_engine_process(db)
        live(db, engine.pid)
        again = cli("backfill", "hourly", "--from", f"{day}T06:00", "--to", f"{day}T17:00", "--db", str(db))
        assert again.returncode == 0, again.stderr

        def settled() -> bool:
            active = rows(db, "SELECT count(*) AS n FROM runs WHERE state IN ('waiting', 'running')")[0]["n"]
            return active == 0 and len(rows(db, "SELECT id FROM runs")) == 18

        wait_until(settled, timeout=60, what="every slot of 00:00-17:00 to be run")
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(20)
    slots = out.read_text().split()
    assert len(slots) == len(set(slots)), f"a slot ran twice: {sorted(slots)}"
    made = rows(db, "SELECT scheduled_for, attempt, state FROM runs WHERE event = 'hourly' ORDER BY scheduled_for")
    assert [r["scheduled_for"][11:16] for r in made] == [f"{h:02d}:00" for h in range(18)]
    assert {r["attempt"] for r in made} == {1}
    assert len(slots) >= 17  # a slot whose command was cut by the kill may be lost, never run twice
