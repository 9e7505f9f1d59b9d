"""History written as the engine writes it (run rows through the store, a log file per started
run at the path the executors would give it), fast enough to make months of it in a test."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from evman.engine.clock import iso
from evman.engine.store import RUN_COLUMNS, Store


def log_path(logs_dir: Path, event: str, run_id: int) -> str:
    """Where the executors of this release put a run's log (<logs>/<event>/<id>.log)."""
    return os.path.join(str(logs_dir), event, f"{run_id}.log")


def add_runs(
    store: Store,
    logs_dir: Path | None,
    event: str,
    start: datetime,
    count: int,
    every: timedelta,
    *,
    state: str = "succeeded",
    took: timedelta = timedelta(seconds=2),
    text: str = "done\n",
    path_of: Any = log_path,
) -> list[int]:
    """`count` finished runs of `event`, one every `every` from `start`; their logs written
    (when logs_dir is given). Returns their ids."""
    first = store.max_run_id() + 1
    rows = []
    for n in range(count):
        run_id = first + n
        at = start + every * n
        started = None if state in ("skipped", "missed") else at
        path = path_of(logs_dir, event, run_id) if logs_dir is not None else None
        if path is not None and started is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                fh.write(text)
        rows.append(
            {
                "id": run_id,
                "event": event,
                "state": state,
                "trigger": "schedule",
                "attempt": 1,
                "needs_prepare": 0,
                "scheduled_for": iso(at),
                "created_at": iso(at),
                "started_at": iso(started),
                "ended_at": iso(at + took),
                "exit_code": 0 if state == "succeeded" else 1 if state == "failed" else None,
                "output_tail": text.strip(),
                "host": "here" if started else None,
                "log_path": path,
            }
        )
    assert all(store.insert_runs([{c: r.get(c) for c in RUN_COLUMNS} for r in rows]))
    return [r["id"] for r in rows]


def add_active(store: Store, event: str, at: datetime, state: str = "running") -> int:
    run_id = store.max_run_id() + 1
    row = {
        "id": run_id,
        "event": event,
        "state": state,
        "trigger": "schedule",
        "attempt": 1,
        "needs_prepare": 0,
        "scheduled_for": iso(at),
        "created_at": iso(at),
        "started_at": iso(at) if state == "running" else None,
    }
    assert store.insert_runs([{c: row.get(c) for c in RUN_COLUMNS}]) == [True]
    return run_id


def ids(store: Store, event: str | None = None) -> set[int]:
    where, params = ("WHERE event = ?", (event,)) if event else ("", ())
    return {int(r[0]) for r in store.rows(f"SELECT id FROM runs {where}", params)}


def raise_alert(store: Store, event: str, kind: str, at: datetime, run_id: int | None = None) -> int:
    with store.transaction():
        cur = store.execute(
            "INSERT INTO alerts (kind, event, run_id, message, created_at, updated_at) "
            "VALUES (?, ?, ?, 'it failed', ?, ?) RETURNING id",
            (kind, event, run_id, iso(at), iso(at)),
        )
        return int(cur.fetchall()[0][0])
