"""The SQLite file itself: schema and migrations, refusals, permissions, WAL, indexed tick queries."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.definitions import spec_to_json
from evman.engine.engine import Engine
from evman.engine.model import EventSpec
from evman.engine.store import MIGRATIONS, SCHEMA_VERSION, StoreError, open_store
from evman.engine.store.stores import SqliteStore
from tests.engine_cli import SETTLE_S, cli, insert_request, load_defs, rows

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# -- schema and migrations -------------------------------------------------------------------


def test_new_file_gets_the_current_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    open_store(db).close()
    assert SCHEMA_VERSION == len(MIGRATIONS)
    assert user_version(db) == SCHEMA_VERSION
    tables = {r["name"] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "runs", "alerts", "requests", "engine"} <= tables


def test_empty_sqlite_file_at_version_0_is_migrated_and_reopening_keeps_data(tmp_path: Path) -> None:
    db = tmp_path / "v0.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    os.chmod(db, 0o600)
    store = open_store(db)
    store.add_request("trigger", "x", requested_by="test")
    store.close()
    assert user_version(db) == SCHEMA_VERSION
    open_store(db).close()  # a second open migrates nothing and loses nothing
    assert [r["target"] for r in rows(db, "SELECT target FROM requests")] == ["x"]


def test_newer_schema_is_refused_and_the_file_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    open_store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 41}")
    conn.close()
    before = digest(db)
    with pytest.raises(StoreError) as caught:
        open_store(db)
    message = str(caught.value)
    assert f"schema {SCHEMA_VERSION + 41}" in message and "newer evman" in message
    assert "Upgrade evman" in message
    assert digest(db) == before
    assert user_version(db) == SCHEMA_VERSION + 41


def test_newer_schema_through_the_cli_is_one_line_without_traceback(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    open_store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    done = cli("list", "--db", str(db))
    assert done.returncode != 0
    assert "newer evman" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_sqlite_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(b"shopping list\n- milk\n- a new cron library\n" * 200)
    db.chmod(0o600)
    before = digest(db)
    with pytest.raises(StoreError) as caught:
        open_store(db)
    assert "not an evman database" in str(caught.value) and str(db) in str(caught.value)
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, no -shm


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    db.chmod(0o600)
    before = digest(db)
    with pytest.raises(StoreError) as caught:
        open_store(db)
    assert "another program" in str(caught.value)
    assert digest(db) == before


# -- permissions and journal -----------------------------------------------------------------


def test_file_is_created_0600_and_wal_is_on(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even with a permissive umask
    try:
        db = tmp_path / "private.db"
        store = open_store(db)
        store.add_request("hold", "x", requested_by="test")  # makes SQLite create -wal and -shm
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for side in (tmp_path / "private.db-wal", tmp_path / "private.db-shm"):
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store.close()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602], ids=oct)
def test_a_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    db = tmp_path / "shared.db"
    open_store(db).close()
    db.chmod(mode)
    with pytest.raises(StoreError) as caught:
        open_store(db)
    assert f"chmod 600 {db}" in str(caught.value)
    done = cli("list", "--db", str(db))
    assert done.returncode != 0 and "chmod 600" in done.stderr and "Traceback" not in done.stderr


def test_memory_store_has_the_same_schema(tmp_path: Path) -> None:
    mem = open_store(memory=True)
    names = {r[0] for r in mem.conn.execute("SELECT name FROM sqlite_master")}
    open_store(tmp_path / "f.db").close()
    assert names == {r["name"] for r in rows(tmp_path / "f.db", "SELECT name FROM sqlite_master")}


# -- the tick's queries use indexes --------------------------------------------------------------

EVENTS = 100_000
DUE = 10


def template_spec(name: str, **coordination: Any) -> EventSpec:
    return EventSpec(name=name, run=("true",), schedule="0 6 * * *", timezone="UTC", **coordination)


def fill_events(db: Path, now: datetime) -> None:
    """100,000 events straight into `events`; DUE of them due, the rest over the next day."""
    shared = spec_to_json(template_spec("bulk"))
    stamp = iso(now)
    later = [
        (
            f"bulk-{i:06d}",
            shared,
            "run",
            "0 6 * * *",
            "UTC",
            iso(now + timedelta(seconds=1 + (i * 86_399) // EVENTS)),
            stamp,
            stamp,
        )
        for i in range(EVENTS - DUE)
    ]
    # The due ones get specs of their own, so their runs carry their own names; they share a
    # pool of 2 and a group (the pool desk and group:NAME must read no whole table either).
    due = [
        (
            f"due-{i}",
            spec_to_json(template_spec(f"due-{i}", uses={"warehouse": 1}, group="due", priority=i % 3)),
            "run",
            "0 6 * * *",
            "UTC",
            iso(now - timedelta(seconds=30 - i)),
            stamp,
            stamp,
        )
        for i in range(DUE)
    ]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO events (name, spec, kind, schedule, timezone, next_fire_at, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            later + due,
        )
        conn.execute("UPDATE events SET group_name = 'due' WHERE name LIKE 'due-%'")
        conn.execute("INSERT INTO pools (name, size) VALUES ('warehouse', 2)")
        conn.execute("UPDATE settings SET value = '1' WHERE key = 'defs_version'")
    conn.close()


def plans(store: SqliteStore, statements: list[str]) -> dict[str, list[str]]:
    out = {}
    for sql in statements:
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            out[sql] = [str(r[3]) for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return out


def partial_indexes(store: SqliteStore) -> set[str]:
    return {
        r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
    }


def full_scans(store: SqliteStore, found: dict[str, list[str]]) -> dict[str, list[str]]:
    """Statements whose plan reads a whole table, or a whole index that is not partial
    (a scan of a partial index only reads the rows that match it: open requests, active runs)."""
    partial = partial_indexes(store)
    tables = ("events", "runs", "alerts", "requests", "event_deps", "deliveries")

    def is_full(step: str) -> bool:
        words = step.split()
        if len(words) < 2 or words[0] != "SCAN" or words[1] not in tables:
            return False
        return not (len(words) >= 5 and words[-1] in partial)

    return {sql: plan for sql, plan in found.items() if any(is_full(step) for step in plan)}


def assert_no_scans(store: SqliteStore, found: dict[str, list[str]]) -> None:
    bad = full_scans(store, found)
    assert not bad, "full scans:\n" + "\n".join(f"{s}\n  -> {p}" for s, p in bad.items())


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("big") / "big.db"
    open_store(db).close()
    fill_events(db, NOW)
    return db


def test_named_tick_queries_use_indexes(big_db: Path) -> None:
    store = open_store(big_db)
    assert isinstance(store, SqliteStore)
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    store.due_events(NOW)
    store.next_due_at()
    store.open_requests()
    store.active_runs()
    store.last_finished("due-1")
    store.dependents("due-1")
    store.open_alert("due-1", "failed")
    store.open_alerts_of("due-1")
    store.event_specs(["due-1"])
    store.max_attempt("due-1", iso(NOW) or "")
    store.dedupe_holder("k", 10)
    store.pool_claimants()
    store.pool_sizes()
    store.lock_pools(["warehouse"])
    store.group_members("due")
    store.conn.set_trace_callback(None)
    found = plans(store, seen)
    assert len(found) >= 14
    # the check itself can fail: a filter on an unindexed column reads all 100,000 rows
    assert full_scans(store, plans(store, ["SELECT name FROM events WHERE kind = 'run'"]))
    assert_no_scans(store, found)
    for sql, plan in found.items():
        if "FROM events" in sql and "next_fire_at" in sql:
            assert any("events_due" in step for step in plan), (sql, plan)
        if "FROM runs WHERE state IN" in sql:
            assert any("runs_active" in step for step in plan), (sql, plan)
    store.close()


def test_a_tick_of_100k_events_materialises_only_the_due_and_scans_nothing(
    big_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(big_db)
    assert isinstance(store, SqliteStore)
    engine = Engine(store, clock=FakeClock(NOW))
    try:
        start_began = time.perf_counter()
        engine.start()
        start_took = time.perf_counter() - start_began
        insert_request(big_db, "hold", "bulk-000001")  # the tick also handles a request
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        started = time.perf_counter()
        changes = engine.tick(NOW)
        took = time.perf_counter() - started
        store.conn.set_trace_callback(None)
        idle_started = time.perf_counter()
        engine.tick(NOW + timedelta(milliseconds=500))
        idle = time.perf_counter() - idle_started
        engine.settle(NOW, timeout_s=SETTLE_S)
    finally:
        engine.executors.shutdown(wait_s=0)
    with capsys.disabled():
        print(
            f"\n[100k events] engine start: {start_took * 1000:.1f} ms; tick materialising "
            f"{DUE} due runs: {took * 1000:.1f} ms; idle tick: {idle * 1000:.2f} ms"
        )
    made = [r for r in rows(big_db, "SELECT event, state, trigger FROM runs ORDER BY id")]
    assert sorted(r["event"] for r in made) == sorted(f"due-{i}" for i in range(DUE))
    assert {r["state"] for r in made} == {"succeeded"}
    assert [c for c in changes if c.kind == "request"][0].state == "ok"
    assert_no_scans(store, plans(store, seen))
    nxt = rows(big_db, "SELECT count(*) AS n FROM events WHERE next_fire_at <= ?", (iso(NOW),))
    assert nxt[0]["n"] == 0  # every due event moved on to its next fire time
    store.close()


def test_load_then_reopen_keeps_definitions(tmp_path: Path) -> None:
    db = tmp_path / "defs.db"
    load_defs(
        db,
        """
        [[event]]
        name = "a"
        run = "true"
        schedule = "0 6 * * *"
        timezone = "UTC"
    """,
        tmp_path,
        NOW,
    )
    got = rows(db, "SELECT name, schedule, next_fire_at, defined FROM events")
    assert got == [
        {
            "name": "a",
            "schedule": "0 6 * * *",
            "next_fire_at": iso(datetime(2026, 1, 6, 6, 0, tzinfo=UTC)),
            "defined": 1,
        }
    ]
