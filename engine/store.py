"""The SQLite file: schema, migrations and every SQL statement evman runs."""
from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from engine.clock import iso

SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_MS: Final = 10_000
"""How long a statement waits for another writer's lock; EVMAN_BUSY_TIMEOUT_MS overrides it."""

_V1: Final = """
CREATE TABLE events (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    kind TEXT NOT NULL,
    schedule TEXT,
    timezone TEXT NOT NULL,
    driver TEXT,
    requires TEXT,
    held INTEGER NOT NULL DEFAULT 0,
    held_by TEXT,
    next_fire_at TEXT,
    defined INTEGER NOT NULL DEFAULT 1,
    source TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX events_due ON events(next_fire_at) WHERE next_fire_at IS NOT NULL AND defined = 1;

CREATE TABLE event_deps (
    upstream TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (upstream, event)
) WITHOUT ROWID;

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    trigger TEXT NOT NULL,
    triggered_by TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    repeats_run_id INTEGER,
    scheduled_for TEXT NOT NULL,
    created_at TEXT NOT NULL,
    not_before TEXT,
    window_open TEXT,
    due_by TEXT,
    late_at TEXT,
    needs_prepare INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    ended_at TEXT,
    exit_code INTEGER,
    reason TEXT,
    output_tail TEXT,
    waiting_reason TEXT,
    pid INTEGER,
    host TEXT,
    log_path TEXT,
    checks TEXT,
    flags TEXT,
    UNIQUE (event, scheduled_for, attempt)
);
CREATE INDEX runs_active ON runs(state) WHERE state IN ('waiting', 'running');
CREATE INDEX runs_event_active ON runs(event, id) WHERE state IN ('waiting', 'running');
CREATE INDEX runs_event ON runs(event, id);
CREATE INDEX runs_event_ended ON runs(event, ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    run_id INTEGER,
    route TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    count INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    resolved_at TEXT,
    pending INTEGER NOT NULL DEFAULT 1,
    next_attempt_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    escalated_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_page_at TEXT,
    held TEXT,
    held_since TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts(event, kind) WHERE status = 'open';
CREATE INDEX alerts_pending ON alerts(next_attempt_at) WHERE pending = 1;
CREATE INDEX alerts_event ON alerts(event, id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    route TEXT,
    target TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    page INTEGER
);
CREATE INDEX deliveries_alert ON deliveries(alert_id);

CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    verb TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT,
    requested_by TEXT,
    dedupe_key TEXT,
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    handled_at TEXT,
    outcome TEXT,
    detail TEXT
);
CREATE INDEX requests_open ON requests(id) WHERE handled_at IS NULL;
CREATE INDEX requests_dedupe ON requests(dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE TABLE engine (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER,
    host TEXT,
    started_at TEXT,
    heartbeat_at TEXT,
    stopped_at TEXT,
    tick_s REAL,
    version TEXT
);

CREATE TABLE routes (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT
);
INSERT INTO settings (key, value) VALUES ('defs_version', '0');
"""

MIGRATIONS: Final[Sequence[str]] = (_V1,)
"""MIGRATIONS[i] takes a database from user_version i to i + 1."""

RUN_COLUMNS: Final = (
    "id", "event", "state", "trigger", "triggered_by", "attempt", "repeats_run_id",
    "scheduled_for", "created_at", "not_before", "window_open", "due_by", "late_at",
    "needs_prepare", "started_at", "ended_at", "exit_code", "reason", "output_tail",
    "waiting_reason", "pid", "host", "log_path", "checks", "flags",
)


_SHOWN_RUN: Final = (
    "coalesce((SELECT max(id) FROM runs INDEXED BY runs_event_active "
    "WHERE event = e.name AND state IN ('waiting', 'running')), "
    "(SELECT id FROM runs WHERE event = e.name AND state != 'skipped' ORDER BY id DESC LIMIT 1), "
    "(SELECT max(id) FROM runs WHERE event = e.name))")
"""The run an event's row shows: its active run, else its latest that was not skipped (a
skipped occurrence says nothing of how the event is doing), else its latest."""


class StoreError(RuntimeError):
    """A database problem said in words a user can act on."""


@dataclass(frozen=True)
class EngineRow:
    pid: int | None
    host: str | None
    started_at: str | None
    heartbeat_at: str | None
    stopped_at: str | None


def busy_timeout_ms() -> int:
    """EVMAN_BUSY_TIMEOUT_MS when it holds a whole number of 0 or more, else BUSY_TIMEOUT_MS."""
    text = os.environ.get("EVMAN_BUSY_TIMEOUT_MS", "").strip()
    return int(text) if text.isdigit() else BUSY_TIMEOUT_MS


def create_private_file(path: Path) -> None:
    """Create `path` with mode 0600 if it does not exist (SQLite gives -wal/-shm the same mode)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def check_file_safety(path: Path) -> None:
    """Refuse a database file that other users can write."""
    mode = path.stat().st_mode
    if mode & 0o022:
        raise StoreError(
            f"{path} can be written by other users (mode {mode & 0o777:o}); anyone could queue "
            f"commands through it. Run: chmod 600 {path}"
        )


class Store:
    """One connection to an evman database. Not shared between threads without care:
    give each thread its own Store (they are cheap)."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False,
                 create: bool = True, readonly: bool = False) -> None:
        self.path = None if memory or path is None else Path(path)
        self.readonly = readonly
        self.busy_timeout_ms = busy_timeout_ms()
        self._lock = threading.RLock()
        self.conn = self._connect(create=create)
        self._migrate()

    @functools.cached_property
    def db(self) -> Any:
        """A sqlite_utils view of the connection, for ad-hoc use. Imported on first use:
        sqlite_utils costs ~100 ms to import, most of `evman list`'s start-up."""
        import sqlite_utils
        return sqlite_utils.Database(self.conn)

    # -- opening ---------------------------------------------------------------

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        else:
            conn = self._connect_file(create=create)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(self._not_a_database(exc)) from exc
        return conn

    def _use_wal(self) -> None:
        """WAL only once the file is known to be ours: switching writes the file header."""
        if self.path is None or self.readonly:
            return
        try:
            self.conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            raise StoreError(self._locked_message(exc)) from exc

    def _connect_file(self, *, create: bool) -> sqlite3.Connection:
        assert self.path is not None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database. Use --db PATH to a file.")
        if not self.path.exists():
            if not create or self.readonly:
                raise StoreError(
                    f"{self.path} does not exist. Create it with: evman load DEFINITIONS.toml --db {self.path}"
                )
            try:
                create_private_file(self.path)
            except OSError as exc:
                raise StoreError(f"Cannot create {self.path}: {exc.strerror}.") from exc
        else:
            check_file_safety(self.path)
        if self.readonly or not os.access(self.path, os.W_OK):
            self.readonly = True
            uri = f"file:{self.path}?mode=ro"
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _not_a_database(self, exc: BaseException) -> str:
        return (f"{self.path or ':memory:'} is not an evman database ({exc}). "
                f"Check the --db path; evman will not touch this file.")

    def _migrate(self) -> None:
        try:
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._not_a_database(exc)) from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer evman (schema {version}; this one knows "
                f"{SCHEMA_VERSION}). Upgrade evman; this database was left untouched."
            )
        if version == 0 and self._has_foreign_tables():
            raise StoreError(
                f"{self.path} is a SQLite database of another program (it has tables but no evman "
                f"schema). Use --db PATH to choose another file; this one was left untouched."
            )
        self._use_wal()
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise StoreError(f"{self.path} needs a schema upgrade, but it is read-only.")
        for step in range(version, SCHEMA_VERSION):
            with self.transaction():
                self._run_script(MIGRATIONS[step])
                self.conn.execute(f"PRAGMA user_version = {step + 1}")

    def _run_script(self, script: str) -> None:
        for statement in script.split(";\n"):
            if statement.strip():
                self.conn.execute(statement)

    def _has_foreign_tables(self) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()
        return bool(row[0])

    def close(self) -> None:
        self.conn.close()

    # -- transactions ----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any error."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(self._locked_message(exc)) from exc
            try:
                yield self.conn
            except sqlite3.OperationalError as exc:  # read-only, disk full, locked: say it in words
                self._rollback()
                raise StoreError(self._locked_message(exc)) from exc
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    self._rollback()
                    raise StoreError(self._locked_message(exc)) from exc

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open: after some errors (a full disk) SQLite has
        rolled it back already, and a second ROLLBACK would hide the first error."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _locked_message(self, exc: sqlite3.OperationalError) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (f"{self.path} stayed locked by another writer for {self.busy_timeout_ms / 1000:g} s. "
                    f"Try again; if it persists, look for a stuck process holding it.")
        if "readonly" in text or "read-only" in text:
            return f"{self.path} is read-only; evman cannot record changes. Check its permissions."
        if "full" in text:
            return f"{self.path}: the disk or database is full ({text}). Free space; nothing was lost."
        return f"{self.path}: {text}"

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap 'did anyone write?'."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    # -- settings and definitions ----------------------------------------------

    def setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def defs_version(self) -> int:
        return int(self.setting("defs_version") or 0)

    def event_names(self, *, defined_only: bool = True) -> set[str]:
        sql = "SELECT name FROM events" + (" WHERE defined = 1" if defined_only else "")
        return {r[0] for r in self.conn.execute(sql)}

    def save_definitions(self, events: Sequence[Mapping[str, Any]],
                         deps: Iterable[tuple[str, str]], routes: Mapping[str, str],
                         defaults_json: str, *, prune: bool, now: datetime) -> dict[str, list[str]]:
        """Upsert events (a dict per event with the events columns), replace deps and routes.

        A changed schedule takes effect from now on: the caller passes next_fire_at computed
        from now for events whose schedule changed or which are new; unchanged events keep theirs.
        Returns {"added": [...], "changed": [...], "unchanged": [...], "pruned": [...]}.
        """
        stamp = iso(now)
        result: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": [], "pruned": []}
        with self.transaction() as conn:
            existing = {r["name"]: r for r in conn.execute(
                "SELECT name, spec, schedule, timezone, defined, next_fire_at FROM events")}
            for ev in events:
                self._upsert_event(conn, ev, existing.get(str(ev["name"])), stamp, result)
            names = [str(ev["name"]) for ev in events]
            if prune:
                gone = [n for n, r in existing.items() if n not in set(names) and r["defined"]]
                conn.executemany(
                    "UPDATE events SET defined = 0, next_fire_at = NULL, updated_at = ? WHERE name = ?",
                    [(stamp, n) for n in gone])
                result["pruned"] = sorted(gone)
            conn.executemany("DELETE FROM event_deps WHERE event = ?", [(n,) for n in names])
            conn.executemany("INSERT OR IGNORE INTO event_deps (upstream, event) VALUES (?, ?)", list(deps))
            conn.executemany("INSERT INTO routes (name, spec) VALUES (?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec", list(routes.items()))
            conn.execute("INSERT INTO settings (key, value) VALUES ('defaults', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (defaults_json,))
            conn.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'defs_version'")
        return result

    def _upsert_event(self, conn: sqlite3.Connection, ev: Mapping[str, Any],
                      old: sqlite3.Row | None, stamp: str | None,
                      result: dict[str, list[str]]) -> None:
        name = str(ev["name"])
        if old is None:
            conn.execute(
                "INSERT INTO events (name, spec, kind, schedule, timezone, driver, requires, "
                "next_fire_at, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (name, ev["spec"], ev["kind"], ev["schedule"], ev["timezone"], ev["driver"],
                 ev["requires"], ev["next_fire_at"], ev["source"], stamp, stamp))
            result["added"].append(name)
            return
        same_timing = old["schedule"] == ev["schedule"] and old["timezone"] == ev["timezone"]
        if old["spec"] == ev["spec"] and old["defined"]:
            result["unchanged"].append(name)
            return
        next_fire = old["next_fire_at"] if same_timing and old["defined"] else ev["next_fire_at"]
        conn.execute(
            "UPDATE events SET spec = ?, kind = ?, schedule = ?, timezone = ?, driver = ?, "
            "requires = ?, next_fire_at = ?, source = ?, defined = 1, updated_at = ? WHERE name = ?",
            (ev["spec"], ev["kind"], ev["schedule"], ev["timezone"], ev["driver"], ev["requires"],
             next_fire, ev["source"], stamp, name))
        result["changed"].append(name)

    def event_row(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM events WHERE name = ?", (name,)).fetchone()
        return None if row is None else dict(row)

    def event_specs(self, names: Iterable[str]) -> dict[str, tuple[str, int]]:
        """name -> (spec JSON, held) for the named events that are defined."""
        out: dict[str, tuple[str, int]] = {}
        for name in names:
            row = self.conn.execute(
                "SELECT spec, held FROM events WHERE name = ? AND defined = 1", (name,)).fetchone()
            if row is not None:
                out[name] = (row[0], int(row[1]))
        return out

    def routes_json(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT name, spec FROM routes")}

    def defaults_json(self) -> str | None:
        return self.setting("defaults")

    def dependents(self, upstream: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT event FROM event_deps WHERE upstream = ?", (upstream,))]

    def all_dependents(self) -> dict[str, list[str]]:
        """upstream -> the events whose `requires` names it, for every edge."""
        out: dict[str, list[str]] = {}
        for upstream, event in self.conn.execute("SELECT upstream, event FROM event_deps ORDER BY upstream, event"):
            out.setdefault(upstream, []).append(event)
        return out

    def upstreams(self, event: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT upstream FROM event_deps WHERE event = ?", (event,))]

    def due_events(self, now: datetime, limit: int = 10_000) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT name, spec, held, next_fire_at FROM events "
            "WHERE next_fire_at IS NOT NULL AND defined = 1 AND next_fire_at <= ? "
            "ORDER BY next_fire_at LIMIT ?", (iso(now), limit)).fetchall()

    def next_due_at(self) -> str | None:
        row = self.conn.execute(
            "SELECT min(next_fire_at) FROM events WHERE next_fire_at IS NOT NULL AND defined = 1"
        ).fetchone()
        return None if row is None else row[0]

    def reboot_events(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM events WHERE schedule = '@reboot' AND defined = 1")]

    # -- runs ------------------------------------------------------------------

    def max_run_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0])

    def active_runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM runs WHERE state IN ('waiting', 'running') ORDER BY id")]

    def run(self, run_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else dict(row)

    def last_finished(self, event: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT id, state, ended_at, exit_code FROM runs "
            "WHERE event = ? AND ended_at IS NOT NULL AND state != 'skipped' "
            "ORDER BY ended_at DESC LIMIT 1", (event,)).fetchone()
        return row

    def max_attempt(self, event: str, scheduled_for: str) -> int:
        row = self.conn.execute("SELECT coalesce(max(attempt), 0) FROM runs WHERE event = ? AND "
                                "scheduled_for = ?", (event, scheduled_for)).fetchone()
        return int(row[0])

    def latest_run(self, event: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM runs WHERE event = ? ORDER BY id DESC LIMIT 1", (event,)).fetchone()
        return None if row is None else dict(row)

    def runs_of(self, event: str | None, limit: int = 50,
                before_id: int | None = None) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if event is not None:
            clauses.append("event = ?")
            params.append(event)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?"
        return [dict(r) for r in self.conn.execute(sql, (*params, limit))]

    def duration_stats(self, event: str, last_n: int = 50) -> dict[str, Any]:
        """count, p50, p90 and max duration (seconds) of the event's last N successful runs."""
        rows = self.conn.execute(
            "SELECT (julianday(ended_at) - julianday(started_at)) * 86400.0 AS d FROM runs "
            "WHERE event = ? AND ended_at IS NOT NULL AND state = 'succeeded' "
            "AND started_at IS NOT NULL ORDER BY ended_at DESC LIMIT ?", (event, last_n)).fetchall()
        durations = sorted(float(r[0]) for r in rows)
        if not durations:
            return {"count": 0, "p50_s": None, "p90_s": None, "max_s": None}

        def pick(q: float) -> float:
            return round(durations[min(len(durations) - 1, int(q * len(durations)))], 3)

        return {"count": len(durations), "p50_s": pick(0.5), "p90_s": pick(0.9),
                "max_s": round(durations[-1], 3)}

    def apply(self, writes: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run the engine's batched writes in one transaction: (statement, rows) pairs.

        Returns, for each pair, how many rows it changed (INSERT OR IGNORE tells the engine
        which occurrences it really created)."""
        changed: list[int] = []
        with self.transaction() as conn:
            for sql, rows in writes:
                before = conn.total_changes
                if len(rows) == 1:
                    conn.execute(sql, rows[0])
                else:
                    conn.executemany(sql, rows)
                changed.append(conn.total_changes - before)
        return changed

    def runs_created(self, ids: Sequence[int], created_at: str) -> set[int]:
        """Which of `ids` are runs created at `created_at` (the rest were not inserted)."""
        out: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" for _ in chunk)
            out.update(r[0] for r in self.conn.execute(
                f"SELECT id FROM runs WHERE created_at = ? AND id IN ({marks})", (created_at, *chunk)))
        return out

    def insert_run_sql(self) -> str:
        cols = ", ".join(RUN_COLUMNS)
        marks = ", ".join("?" for _ in RUN_COLUMNS)
        return f"INSERT OR IGNORE INTO runs ({cols}) VALUES ({marks})"

    def insert_runs(self, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
        """Insert runs (each a mapping with RUN_COLUMNS keys) in one transaction; True per row created."""
        sql = self.insert_run_sql()
        created = []
        with self.transaction() as conn:
            for row in rows:
                cur = conn.execute(sql, tuple(row.get(c) for c in RUN_COLUMNS))
                created.append(cur.rowcount == 1)
        return created

    # -- requests --------------------------------------------------------------

    def add_request(self, verb: str, target: str, *, args: Mapping[str, Any] | None = None,
                    requested_by: str | None = None, dedupe_key: str | None = None,
                    now: datetime | None = None) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO requests (verb, target, args, requested_by, dedupe_key, requested_at) "
                "VALUES (?, ?, ?, ?, ?, coalesce(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
                (verb, target, None if args is None else json.dumps(args), requested_by,
                 dedupe_key, iso(now)))
            return int(cur.lastrowid or 0)

    def open_requests(self, limit: int = 1000) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM requests WHERE handled_at IS NULL ORDER BY id LIMIT ?", (limit,)).fetchall()

    def request(self, request_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return None if row is None else dict(row)

    def dedupe_seen(self, key: str, before_id: int) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM requests WHERE dedupe_key = ? AND id < ? ORDER BY id LIMIT 1",
            (key, before_id)).fetchone()
        return None if row is None else int(row[0])

    # -- alerts ----------------------------------------------------------------

    def open_alert(self, event: str, kind: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM alerts WHERE event = ? AND kind = ? AND status = 'open'",
            (event, kind)).fetchone()
        return row

    def open_alert_kinds(self, events: Iterable[str]) -> dict[str, set[str]]:
        """event -> kinds of its open alerts, for each of `events` (an empty set when none)."""
        names = list(events)
        out: dict[str, set[str]] = {name: set() for name in names}
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            marks = ",".join("?" for _ in chunk)
            for event, kind in self.conn.execute(
                    f"SELECT event, kind FROM alerts WHERE status = 'open' AND event IN ({marks})", chunk):
                out[event].add(kind)
        return out

    def open_alerts_of(self, event: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM alerts WHERE event = ? AND status = 'open' ORDER BY id", (event,))]

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else dict(row)

    def alerts(self, *, event: str | None = None, open_only: bool = False,
               limit: int = 200) -> list[dict[str, Any]]:
        clauses, params = [], []
        if event is not None:
            clauses.append("event = ?")
            params.append(event)
        if open_only:
            clauses.append("status = 'open'")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = (f"SELECT * FROM alerts {where} ORDER BY (status = 'open' AND acknowledged_at IS NULL) "
               f"DESC, id DESC LIMIT ?")
        return [dict(r) for r in self.conn.execute(sql, (*params, limit))]

    def deliveries_of(self, alert_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in alert_ids}
        for chunk_start in range(0, len(alert_ids), 500):
            chunk = alert_ids[chunk_start:chunk_start + 500]
            marks = ",".join("?" for _ in chunk)
            for r in self.conn.execute(
                    f"SELECT * FROM deliveries WHERE alert_id IN ({marks}) ORDER BY id", tuple(chunk)):
                out[int(r["alert_id"])].append(dict(r))
        return out

    def due_alerts(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM alerts WHERE pending = 1 AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            "ORDER BY id LIMIT ?", (iso(now), limit))]

    def next_alert_at(self) -> str | None:
        row = self.conn.execute(
            "SELECT min(coalesce(next_attempt_at, '')) FROM alerts WHERE pending = 1").fetchone()
        return None if row is None else row[0]

    def record_delivery(self, alert_id: int, *, at: datetime, route: str | None, target: str,
                        outcome: str, error: str | None, alert_changes: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in alert_changes)
        with self.transaction() as conn:
            conn.execute("INSERT INTO deliveries (alert_id, attempted_at, route, target, outcome, error) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (alert_id, iso(at), route, target, outcome, error))
            if alert_changes:
                conn.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*alert_changes.values(), alert_id))

    def sent_targets(self, alert_id: int, page: int) -> set[tuple[str | None, str | None]]:
        """(route, target) pairs that already took page `page` of the alert."""
        return {(r[0], r[1]) for r in self.conn.execute(
            "SELECT route, target FROM deliveries WHERE alert_id = ? AND page = ? AND outcome = 'sent'",
            (alert_id, page))}

    def record_attempts(self, updates: Sequence[tuple[int, Sequence[Mapping[str, Any]], Mapping[str, Any]]]
                        ) -> None:
        """The notifier's bookkeeping, in one transaction: for each (alert_id, deliveries, alert
        changes), insert the deliveries rows (attempted_at, route, target, outcome, error, page)
        and update the alert. An alert acknowledged meanwhile stays pending = 0 whatever the
        changes say: an ack always wins over a scheduled repeat."""
        with self.transaction() as conn:
            for alert_id, rows, changes in updates:
                conn.executemany(
                    "INSERT INTO deliveries (alert_id, attempted_at, route, target, outcome, error, page) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(alert_id, r["attempted_at"], r.get("route"), r.get("target"), r["outcome"],
                      r.get("error"), r.get("page")) for r in rows])
                if changes:
                    sets = ", ".join(f"{k} = ?" for k in changes)
                    conn.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*changes.values(), alert_id))
                conn.execute("UPDATE alerts SET pending = 0 WHERE id = ? AND acknowledged_at IS NOT NULL",
                             (alert_id,))

    def raise_delivery_alert(self, event: str, run_id: int | None, route: str | None, message: str,
                             now: datetime) -> None:
        """Open a `delivery` alert for `event`, or add to the open one (same de-duplication as the engine's)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
                "VALUES ('delivery', ?, ?, ?, ?, ?, ?) ON CONFLICT(event, kind) WHERE status = 'open' "
                "DO UPDATE SET count = count + 1, updated_at = excluded.updated_at, "
                "message = excluded.message", (event, run_id, route, message, iso(now), iso(now)))

    def resolve_alerts(self, event: str, kind: str, now: datetime) -> int:
        """Resolve the open alert of (event, kind), if any; how many rows changed."""
        with self.transaction() as conn:
            cur = conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = ? "
                               "WHERE event = ? AND kind = ? AND status = 'open'", (iso(now), event, kind))
            return int(cur.rowcount)

    # -- engine row --------------------------------------------------------------

    def engine_row(self) -> EngineRow | None:
        row = self.conn.execute(
            "SELECT pid, host, started_at, heartbeat_at, stopped_at FROM engine WHERE id = 1").fetchone()
        if row is None:
            return None
        return EngineRow(row[0], row[1], row[2], row[3], row[4])

    def claim_engine(self, *, pid: int, now: datetime, tick_s: float, version: str,
                     may_take: Any) -> EngineRow | None:
        """Take the engine row if `may_take(current_row)` allows; returns the refusing row, else None."""
        with self.transaction() as conn:
            current = self.engine_row()
            if current is not None and not may_take(current):
                return current
            conn.execute(
                "INSERT INTO engine (id, pid, host, started_at, heartbeat_at, stopped_at, tick_s, version) "
                "VALUES (1, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, "
                "host = excluded.host, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                "stopped_at = NULL, tick_s = excluded.tick_s, version = excluded.version",
                (pid, socket.gethostname(), iso(now), iso(now), tick_s, version))
        return None

    def heartbeat_sql(self) -> str:
        return "UPDATE engine SET heartbeat_at = ? WHERE id = 1 AND pid = ?"

    def release_engine(self, *, pid: int, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE engine SET stopped_at = ?, heartbeat_at = ? WHERE id = 1 AND pid = ?",
                         (iso(now), iso(now), pid))

    # -- reads for the CLI and console ---------------------------------------------

    def list_events(self, *, name_like: str | None = None, limit: int | None = None,
                    offset: int = 0, include_pruned: bool = False,
                    name: str | None = None) -> list[dict[str, Any]]:
        """Events with their latest run's state and unacknowledged alert count, by name."""
        clauses: list[str] = []
        params: list[Any] = []
        if name is not None:
            clauses.append("e.name = ?")
            params.append(name)
        if not include_pruned:
            clauses.append("e.defined = 1")
        if name_like:
            clauses.append("e.name LIKE ?")
            params.append(f"%{name_like}%")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        lim = "" if limit is None else f"LIMIT {int(limit)} OFFSET {int(offset)}"
        sql = f"""
            SELECT e.name, e.kind, e.schedule, e.timezone, e.driver, e.requires, e.held,
                   e.next_fire_at, e.defined, e.spec,
                   r.id AS run_id, r.state AS run_state, r.started_at, r.ended_at, r.exit_code,
                   r.scheduled_for, r.waiting_reason, r.due_by, r.late_at, r.flags, r.reason,
                   (SELECT count(*) FROM alerts a WHERE a.event = e.name AND a.status = 'open'
                        AND a.acknowledged_at IS NULL) AS open_alerts
            FROM events e
            LEFT JOIN runs r ON r.id = {_SHOWN_RUN}
            {where} ORDER BY e.name {lim}"""
        return [dict(r) for r in self.conn.execute(sql, params)]

    def count_events(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM events WHERE defined = 1").fetchone()[0])

    def late_runs(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Active runs past their due-by or late-at time, and runs flagged late/overdue/overrun/missed recently."""
        stamp = iso(now)
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM runs WHERE (state IN ('waiting', 'running') AND "
            "((due_by IS NOT NULL AND due_by <= ?) OR (late_at IS NOT NULL AND late_at <= ? AND state = 'waiting') "
            "OR flags IS NOT NULL)) OR (state = 'missed' AND id IN (SELECT id FROM runs WHERE state = 'missed' "
            "ORDER BY id DESC LIMIT 100)) LIMIT ?", (stamp, stamp, limit))]

    def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        return [str(r[3]) for r in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    # -- reads for the console (each an indexed query; see console/app.py) --------------

    def console_events(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One row per defined event for the console's table, by name: the event, its latest
        run (runs_event index), its runtime bounds and its unacknowledged open alerts.

        `names`: only these events (in chunks of 500); None: every defined event."""
        if names is None:
            return self._console_events("", ())
        out: list[dict[str, Any]] = []
        unique = sorted(set(names))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" for _ in chunk)
            out += self._console_events(f"AND e.name IN ({marks})", chunk)
        return out

    def _console_events(self, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        sql = f"""
            SELECT e.name, e.schedule, e.driver, e.requires, e.held, e.held_by, e.next_fire_at,
                   json_extract(e.spec, '$.runtime.min_s') AS runtime_min_s,
                   json_extract(e.spec, '$.runtime.max_s') AS runtime_max_s,
                   r.id AS run_id, r.state AS run_state, r.trigger, r.scheduled_for, r.started_at,
                   r.ended_at, r.exit_code, r.reason, r.waiting_reason, r.due_by, r.late_at, r.flags,
                   (SELECT count(*) FROM alerts a WHERE a.event = e.name AND a.status = 'open'
                        AND a.acknowledged_at IS NULL) AS open_alerts
            FROM events e
            LEFT JOIN runs r ON r.id = {_SHOWN_RUN}
            WHERE e.defined = 1 {where} ORDER BY e.name"""
        return [dict(r) for r in self.conn.execute(sql, tuple(params))]

    def last_finished_runs(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """name -> its most recently ended run (not skipped), for events whose latest run is
        still active (runs_event_ended index, one seek per name)."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            row = self.conn.execute(
                "SELECT id, state, started_at, ended_at, exit_code FROM runs "
                "WHERE event = ? AND ended_at IS NOT NULL AND state != 'skipped' "
                "ORDER BY ended_at DESC LIMIT 1", (name,)).fetchone()
            if row is not None:
                out[name] = dict(row)
        return out

    def watch_marks(self, *, full: bool = True) -> dict[str, Any]:
        """What an attached console compares between two looks to find the events another
        connection changed: the newest run id, the active runs (runs_active) and open alerts
        (alerts_open) with the columns that change, the held events, the definitions version.
        `full=False`: the definitions version only."""
        marks: dict[str, Any] = {"defs_version": self.defs_version()}
        if not full:
            return marks
        marks["max_run_id"] = self.max_run_id()
        marks["active"] = {r[0]: tuple(r[1:]) for r in self.conn.execute(
            "SELECT id, event, state, waiting_reason, flags, pid FROM runs "
            "WHERE state IN ('waiting', 'running')")}
        marks["alerts"] = {r[0]: tuple(r[1:]) for r in self.conn.execute(
            "SELECT id, event, count, acknowledged_at FROM alerts WHERE status = 'open'")}
        marks["held"] = {r[0] for r in self.conn.execute("SELECT name FROM events WHERE held = 1")}
        return marks

    def events_with_runs_after(self, run_id: int, limit: int = 5000) -> set[str]:
        """Events of the runs created after `run_id` (a rowid range scan)."""
        return {r[0] for r in self.conn.execute(
            "SELECT event FROM runs WHERE id > ? ORDER BY id LIMIT ?", (run_id, limit))}

    def attention_runs(self, now: datetime, *, missed_since: datetime,
                       scan_runs: int = 50_000) -> list[dict[str, Any]]:
        """Runs that need the driver: every waiting or running run (runs_active), with its
        event's runtime max, and the missed runs that ended after `missed_since` among the
        newest `scan_runs` runs (a bounded rowid scan, so 1,000,000 runs cost the same as 50,000).
        The caller decides which active runs are late, overdue or over their maximum."""
        active = [dict(r) for r in self.conn.execute(
            "SELECT r.*, json_extract(e.spec, '$.runtime.max_s') AS runtime_max_s FROM runs r "
            "LEFT JOIN events e ON e.name = r.event WHERE r.state IN ('waiting', 'running') "
            "ORDER BY r.id")]
        floor = self.max_run_id() - scan_runs
        missed = [dict(r) for r in self.conn.execute(
            "SELECT *, NULL AS runtime_max_s FROM runs WHERE id > ? AND state = 'missed' "
            "AND ended_at >= ? ORDER BY id DESC LIMIT 500", (floor, iso(missed_since)))]
        return active + missed

    def pending_requests(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The named requests that the engine has answered (handled_at set)."""
        if not ids:
            return []
        marks = ",".join("?" for _ in ids)
        return [dict(r) for r in self.conn.execute(
            f"SELECT id, verb, target, handled_at, outcome, detail FROM requests "
            f"WHERE id IN ({marks}) AND handled_at IS NOT NULL", tuple(ids))]

    def event_of(self, target: str) -> str | None:
        """The event a request target names: an event name, run:N or alert:N."""
        kind, _, number = target.partition(":")
        if kind in ("run", "alert") and number.isdigit():
            table = "runs" if kind == "run" else "alerts"
            row = self.conn.execute(f"SELECT event FROM {table} WHERE id = ?", (int(number),)).fetchone()
            return None if row is None else str(row[0])
        return target
