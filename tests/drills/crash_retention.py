"""Retention under the crash loop, on a compressed clock: horizons of seconds (written into the
stored [defaults] as another program would, below the 1 h a definitions file may say) and a
housekeeping pass every few tenths of a second, so that many SIGKILLs land in the middle of one.

The drill's own triggers (another program's, in the database) copy every run the housekeeper
deletes, with the open alerts pointing at it then, and note the state of every run whose log it
marks pruned. The invariants: nothing active, alerted or needed by foresight (each event's last
20 successes, its last run of every outcome, as they stood when the run was deleted) is ever
deleted; no log is pruned while its run is waiting or running (adopted); after every kill, every
remaining run that started a process has its log on disk or marked pruned. Afterwards the deleted
rows are put back, so the crash loop's own checks see the whole history."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evman.engine.clock import parse_iso
from tests.drills.common import Report, connect, rows, scalar

KEEP_RUNS_S = 4.0
KEEP_LOGS_S = 2.0
EVERY_S = "0.3"
"""EVMAN_HOUSEKEEPING_EVERY_S for the engines of the drill."""
HISTORY_RUNS = 20


SEEDED_PER_EVENT = 30


def arm(db: Path) -> None:
    """Compress the horizons, install the audit triggers, and give every event an hour-old
    history (30 succeeded runs with their logs, in the older one-folder-per-event layout): at
    least 10 of each are past every protection, so retention has work however few runs the
    loop itself makes on a busy machine."""
    _seed(db)
    conn = connect(db)
    try:
        defaults = json.loads(scalar(db, "SELECT value FROM settings WHERE key = 'defaults'") or "{}")
        defaults.update(keep_runs_s=KEEP_RUNS_S, keep_logs_s=KEEP_LOGS_S)
        conn.execute("UPDATE settings SET value = ? WHERE key = 'defaults'", (json.dumps(defaults),))
        conn.execute("CREATE TABLE drill_deleted AS SELECT *, 0 AS alerted, '' AS deleted_at FROM runs WHERE 0")
        conn.execute(
            "CREATE TRIGGER drill_deleted BEFORE DELETE ON runs BEGIN "
            "INSERT INTO drill_deleted SELECT *, (SELECT count(*) FROM alerts WHERE status = 'open' "
            "AND run_id = old.id), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM runs WHERE id = old.id; END"
        )
        conn.execute("CREATE TABLE drill_pruned (run_id INTEGER, state TEXT, at TEXT)")
        conn.execute(
            "CREATE TRIGGER drill_pruned AFTER UPDATE OF log_pruned_at ON runs "
            "WHEN old.log_pruned_at IS NULL AND new.log_pruned_at IS NOT NULL BEGIN "
            "INSERT INTO drill_pruned VALUES (new.id, old.state, new.log_pruned_at); END"
        )
    finally:
        conn.close()


def _seed(db: Path) -> None:
    from evman.engine.store import open_store
    from tests.retention.history import add_runs

    store = open_store(db)
    try:
        names = [str(r[0]) for r in store.rows("SELECT name FROM events ORDER BY name")]
        start = datetime.now(UTC) - timedelta(hours=1)
        for name in names:
            add_runs(store, Path(f"{db}.logs"), name, start, SEEDED_PER_EVENT, timedelta(seconds=1))
    finally:
        store.close()


def caught_up(db: Path) -> bool:
    """The clean engine's housekeeping has deleted at least what was seeded past every protection."""
    return scalar(db, "SELECT count(*) FROM drill_deleted") >= len(names_of(db)) * (SEEDED_PER_EVENT - HISTORY_RUNS)


def after_kill(db: Path, report: Report) -> None:
    """Between a SIGKILL and the next start: every run that started a process has its log on
    disk or marked pruned; a pass killed between marking and unlinking is counted."""
    missing = [
        r["id"]
        for r in rows(db, "SELECT id, log_path FROM runs WHERE pid IS NOT NULL AND log_pruned_at IS NULL")
        if r["log_path"] and not os.path.exists(r["log_path"])
    ]
    report.check(not missing, f"runs whose log is neither on disk nor marked pruned after a kill: {missing[:10]}")
    if scalar(db, "SELECT count(*) FROM pruned_logs"):
        report.counts["kills that left a pass between marking and unlinking"] = (
            report.counts.get("kills that left a pass between marking and unlinking", 0) + 1
        )


def check(db: Path, report: Report) -> None:
    deleted = rows(db, "SELECT * FROM drill_deleted ORDER BY id")
    remaining = rows(db, "SELECT id, event, state, ended_at, created_at FROM runs")
    report.counts["runs deleted by retention"] = len(deleted)
    report.counts["logs pruned by retention"] = scalar(db, "SELECT count(*) FROM drill_pruned")
    seeded = len(names_of(db)) * (SEEDED_PER_EVENT - HISTORY_RUNS)
    report.check(
        len(deleted) >= seeded,
        f"retention deleted {len(deleted)} runs, fewer than the {seeded} seeded past every protection",
    )
    active = [r["id"] for r in deleted if r["state"] in ("waiting", "running")]
    report.check(not active, f"active runs deleted: {active[:10]}")
    alerted = [r["id"] for r in deleted if r["alerted"]]
    report.check(not alerted, f"runs an open alert pointed at were deleted: {alerted[:10]}")
    live = [r["run_id"] for r in rows(db, "SELECT * FROM drill_pruned") if r["state"] in ("waiting", "running")]
    report.check(not live, f"logs pruned while their run was waiting or running: {live[:10]}")
    needed = _needed_when_deleted([*remaining, *deleted], deleted)
    report.check(not needed, f"runs deleted while foresight or show needed them: {needed[:10]}")
    leftover = scalar(db, "SELECT count(*) FROM pruned_logs")
    report.check(leftover == 0, f"{leftover} pruned log(s) still not unlinked after the clean run")


def names_of(db: Path) -> list[str]:
    return [r["name"] for r in rows(db, "SELECT name FROM events")]


def _needed_when_deleted(every: list[Any], deleted: list[Any]) -> list[str]:
    """Deleted runs that were, when deleted, the last of their outcome or among the last
    HISTORY_RUNS successes of their event (counting only runs that had ended by then)."""
    by_event: dict[str, list[Any]] = defaultdict(list)
    for r in every:
        if r["ended_at"]:
            by_event[r["event"]].append(r)
    bad = []
    for d in deleted:
        when = parse_iso(d["deleted_at"]) or datetime.now(UTC)
        ended_then = [r for r in by_event[d["event"]] if (parse_iso(r["ended_at"]) or when) <= when]
        if not any(r["state"] == d["state"] and r["id"] > d["id"] for r in ended_then):
            bad.append(f"run:{d['id']} ({d['event']}) was its last {d['state']}")
        newer_successes = [r for r in ended_then if r["state"] == "succeeded" and r["ended_at"] > d["ended_at"]]
        if d["state"] == "succeeded" and len(newer_successes) < HISTORY_RUNS:
            bad.append(f"run:{d['id']} ({d['event']}) was among its last {HISTORY_RUNS} successes")
    return bad


def restore(db: Path) -> None:
    """Put the deleted rows back (and drop the triggers): the crash loop's checks of run chains,
    exit codes and the ledger want every run that ever was."""
    conn: sqlite3.Connection = connect(db)
    try:
        conn.execute("DROP TRIGGER drill_deleted")
        conn.execute("DROP TRIGGER drill_pruned")
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        names = ", ".join(columns)
        conn.execute(f"INSERT INTO runs ({names}) SELECT {names} FROM drill_deleted")
    finally:
        conn.close()
