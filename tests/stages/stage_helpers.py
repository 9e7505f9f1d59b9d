"""Helpers for the stage tests (an engine on a fake clock over a real file): rows, the mailbox, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from evman.engine.clock import FakeClock
from evman.engine.engine import Change, Engine
from evman.engine.store import Store, open_store
from tests.outside import found

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def runs(store: Store, event: str | None = None) -> list[dict[str, Any]]:
    """Every run (of `event`), oldest first."""
    sql = "SELECT * FROM runs" + (" WHERE event = ?" if event else "") + " ORDER BY id"
    return store.dicts(sql, (event,) if event else ())


def alerts(store: Store, event: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    clauses, params = [], []
    if event:
        clauses.append("event = ?")
        params.append(event)
    if kind:
        clauses.append("kind = ?")
        params.append(kind)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return store.dicts(f"SELECT * FROM alerts{where} ORDER BY id", params)


def states(store: Store, event: str) -> list[str]:
    return [r["state"] for r in runs(store, event)]


def ask(
    engine: Engine,
    verb: str,
    target: str,
    *,
    by: str = "alice",
    args: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write a request row the way another program would (its own connection), tick, and
    return the handled row."""
    assert engine.store.target is not None
    other = open_store(engine.store.target)
    try:
        request_id = other.add_request(verb, target, args=args, requested_by=by)
    finally:
        other.close()
    engine.tick(now)
    row = engine.store.request(request_id)
    assert row is not None and row["handled_at"] is not None, f"request {request_id} not handled"
    return row


def trigger(engine: Engine, event: str, *, by: str = "alice", now: datetime | None = None) -> int:
    """`evman trigger EVENT` through the mailbox; returns the new run's id."""
    row = ask(engine, "trigger", event, by=by, now=now)
    assert row["outcome"] == "ok", row["outcome"]
    return int(row["detail"].split()[1])


def settle(engine: Engine, clock: FakeClock, advance: timedelta | None = None) -> list[Change]:
    if advance is not None:
        clock.advance(advance)
    return engine.settle(clock.now())


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    """Poll in real time (child processes take real time); generous by default."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def wait_running(engine: Engine, clock: FakeClock, run_id: int, timeout_s: float = 15.0) -> None:
    """Tick until the run's process is alive (recorded with a pid)."""

    def started() -> bool:
        engine.tick(clock.now())
        row = engine.store.run(run_id)
        return row is not None and row["pid"] is not None

    wait_until(started, timeout_s, f"run {run_id} to start")


def evman(db: Path | str | None, *args: str) -> Any:
    """`evman ARGS --db DB` in-process through click; returns parsed JSON when --json is given.
    DB is a file or a postgresql:// URL: a store's `target` will do."""
    from evman.console.cli.main import main

    result = CliRunner().invoke(main, ["--db", str(found(db, "database")), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else result.output


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def running_pids(db_path: Path) -> list[int]:
    if str(db_path).startswith("postgresql://"):
        import psycopg

        from tests.outside import rows

        try:
            return [
                int(r["pid"]) for r in rows(db_path, "SELECT pid FROM runs WHERE state = 'running' AND pid IS NOT NULL")
            ]
        except psycopg.Error:  # a test that never made the tables
            return []
    if not db_path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return [int(r[0]) for r in conn.execute("SELECT pid FROM runs WHERE state = 'running' AND pid IS NOT NULL")]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return []
