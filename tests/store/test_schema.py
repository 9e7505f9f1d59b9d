"""The schema as steps: one description both backends are built from, sqlite-utils applying it to
SQLite, a database written by the previous commit opening as it did, and a new step migrating
old and new databases alike (what HACKING.md's "Changing the schema" promises)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.store import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION, open_store, pg_schema, sqlite_schema
from evman.engine.store.ddl import (
    NOW,
    AddColumn,
    Column,
    DropColumn,
    Index,
    Op,
    RenameColumn,
    Seed,
    Statement,
    Step,
    Table,
    Transform,
    check,
    columns_after,
)
from evman.engine.store.stores import SqliteStore
from tests.engine_cli import SETTLE_S, cli, connect, load_defs, rows

pytestmark = pytest.mark.backends

DATABASES = Path(__file__).parents[1] / "data" / "databases"
PREVIOUS = {"c18d7f1": 1, "cccf2df": 2}
"""Databases made by tests/data/databases/make_history_db.py with the code of these commits, and
their schema versions, both written by DDL text before sqlite-utils: evman 0.1 (schema 1) and the
business calendars' step 2. Each holds a day of runs, an open failure alert, a handled and an
open request."""
AFTER_PREVIOUS = datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
"""An hour after that database's last tick: its engine's heartbeat is stale."""
TABLES = ("alerts", "deliveries", "engine", "event_deps", "events", "requests", "routes", "runs", "settings")


@pytest.fixture(params=sorted(PREVIOUS))
def previous(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of a database an earlier commit made, private as evman makes its files."""
    db = tmp_path / "previous.db"
    shutil.copyfile(DATABASES / f"history-{request.param}.db", db)
    db.chmod(0o600)
    assert user_version(db) == PREVIOUS[request.param]
    return db


def user_version(db: Path) -> int:
    return int(rows(db, "PRAGMA user_version")[0]["user_version"])


def columns(db: Path) -> dict[str, list[str]]:
    return {t: [r["name"] for r in rows(db, f"PRAGMA table_info({t})")] for t in TABLES}


def sqlite_shape(db: Path) -> dict[str, Any]:
    """Per table: its columns (name, type, NOT NULL, default, pk) in order, and its keys and
    indexes as (columns, unique, WHERE), whatever their names (a UNIQUE constraint and a unique
    index are one key)."""
    conn = sqlite3.connect(db)
    try:
        out: dict[str, Any] = {}
        for table in TABLES:
            columns = [tuple(r[1:6]) for r in conn.execute(f"PRAGMA table_xinfo({table})")]
            keys = set()
            for _, name, unique, _, _ in conn.execute(f"PRAGMA index_list({table})"):
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
                found = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
                sql = found[0] or "" if found else ""  # a WITHOUT ROWID table's key has no row
                keys.add((cols, bool(unique), sql.partition(" WHERE ")[2]))
            out[table] = {"columns": columns, "keys": keys}
        return out
    finally:
        conn.close()


def index_names(db: Path) -> set[str]:
    return {r["name"] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def counts(db: Path | str) -> dict[str, int]:
    return {t: int(rows(db, f"SELECT count(*) AS n FROM {t}")[0]["n"]) for t in TABLES}


# -- one description -------------------------------------------------------------------------


def test_every_kind_of_step_op_has_a_sqlite_and_a_postgresql_form() -> None:
    ops = set(get_args(Op))
    assert set(sqlite_schema.OPS) == ops and set(pg_schema.OPS) == ops


def test_run_columns_are_the_runs_table_a_new_file_gets(tmp_path: Path) -> None:
    open_store(tmp_path / "new.db").close()
    assert RUN_COLUMNS == tuple(r["name"] for r in rows(tmp_path / "new.db", "PRAGMA table_info(runs)"))
    assert RUN_COLUMNS[:3] == ("id", "event", "state") and len(RUN_COLUMNS) == 29


def test_columns_after_follows_added_renamed_and_dropped_columns() -> None:
    steps = [
        Step("t", (Table("t", (Column("id", "id"), Column("a", "text"), Column("b", "int"))),)),
        Step("more", (AddColumn("t", Column("c", "int", not_null=True, default=0)),)),
        Step("tidy", (RenameColumn("t", "a", "alpha"), DropColumn("t", "b"))),
    ]
    assert columns_after(steps, "t") == ("id", "alpha", "c")
    assert columns_after(steps[:1], "t") == ("id", "a", "b")


@pytest.mark.parametrize(
    "op",
    [
        AddColumn("runs", Column("note", "text", default="x")),
        AddColumn("runs", Column("must", "int", not_null=True)),
        AddColumn("runs", Column("now", "text", not_null=True, default=NOW)),
        Table("t", (Column("id", "id"), Column("name", "text")), pk=("name",)),
        Table("t", (Column("name", "text"),), pk=("id",)),
    ],
    ids=["default-without-not-null", "not-null-without-default", "default-now", "id-not-the-pk", "pk-not-a-column"],
)
def test_a_step_a_backend_could_not_apply_is_refused_with_what_to_do(op: Op) -> None:
    with pytest.raises(ValueError, match="AddColumn runs|table t"):
        check([Step("bad", (op,))])
    check(MIGRATIONS)  # the real steps pass: schema.py checks them at import


def test_postgresql_and_sqlite_get_the_same_tables_columns_and_indexes(pg_dsn: str, tmp_path: Path) -> None:
    open_store(pg_dsn).close()
    open_store(tmp_path / "new.db").close()
    fleet = {
        "engines": None,
        "runs": {"engine_id", "epoch"},
        "requests": {"engine_id", "claimed_by"},
    }  # PostgreSQL's own steps
    for table in TABLES:
        pg = rows(
            pg_dsn,
            "SELECT column_name AS name, is_nullable = 'NO' AS nn, column_default IS NOT NULL AS has_default "
            "FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        lite = rows(tmp_path / "new.db", f"PRAGMA table_info({table})")
        ours = [
            (r["name"], bool(r["nn"]), bool(r["has_default"])) for r in pg if r["name"] not in (fleet.get(table) or ())
        ]
        expected = [(r["name"], bool(r["notnull"] or r["pk"]), r["dflt_value"] is not None) for r in lite]
        # an "id" is an identity on PostgreSQL (a default) and the rowid on SQLite
        assert [(n, nn, d and n != "id") for n, nn, d in ours] == expected, table
    pg_indexes = {r["indexname"] for r in rows(pg_dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert index_names(tmp_path / "new.db") <= pg_indexes


# -- the previous commit's database ------------------------------------------------------------


def test_a_fresh_database_has_the_shape_of_one_an_earlier_commit_made(previous: Path, tmp_path: Path) -> None:
    """Once migrated, the same columns, types, defaults, keys and partial indexes; runs'
    occurrence key was a table constraint and is a named unique index now (one key either way).
    The old engine table's CHECK (id = 1) has no sqlite-utils form: the one statement that writes
    the row says 1."""
    open_store(previous).close()
    open_store(tmp_path / "new.db").close()
    assert sqlite_shape(tmp_path / "new.db") == sqlite_shape(previous)
    assert index_names(tmp_path / "new.db") - index_names(previous) == {"runs_occurrence"}
    assert index_names(previous) <= index_names(tmp_path / "new.db")


def kept_every_row(before: dict[str, int], after: dict[str, int]) -> bool:
    """Every table holds the rows it held; settings may gain the keys a later step seeds."""
    return all(after[t] == n for t, n in before.items() if t != "settings") and after["settings"] >= before["settings"]


def test_an_earlier_commits_database_opens_migrated_once_keeps_every_row_and_runs(previous: Path) -> None:
    before_rows, before_columns, version = counts(previous), columns(previous), user_version(previous)
    before_schema = rows(previous, "SELECT sql FROM sqlite_master")
    assert before_rows["runs"] >= 60 and before_rows["alerts"] == 1 and before_rows["requests"] == 2
    clock = FakeClock(AFTER_PREVIOUS)
    store = open_store(previous)
    try:
        assert kept_every_row(before_rows, counts(previous)) and user_version(previous) == SCHEMA_VERSION
        if version == SCHEMA_VERSION:  # current already: not touched
            assert rows(previous, "SELECT sql FROM sqlite_master") == before_schema
        for table, names in columns(previous).items():  # older: columns only added, after the old ones
            assert names[: len(before_columns[table])] == before_columns[table], table
        engine = Engine(store, clock=clock, logs_dir=previous.parent / "logs")
        engine.start()
        engine.settle(clock.now(), timeout_s=SETTLE_S)  # answers the open trigger request
        clock.advance(timedelta(hours=1))
        engine.settle(clock.now(), timeout_s=SETTLE_S)
        engine.executors.shutdown(wait_s=0)
    finally:
        store.close()
    trigger = rows(previous, "SELECT outcome FROM requests WHERE verb = 'trigger'")
    assert trigger == [{"outcome": "ok"}]
    new_runs = rows(previous, "SELECT event, state FROM runs WHERE created_at >= ?", (AFTER_PREVIOUS.isoformat(),))
    assert {"event": "extract", "state": "succeeded"} in new_runs
    shown = json.loads(cli("history", "--db", str(previous), "-n", "500", "--json").stdout)
    assert len(shown) == before_rows["runs"] + len(new_runs)


# -- a new step ------------------------------------------------------------------------------

A_NEW_STEP = Step(
    "a step with every kind of op, as a helper would append one",
    (
        AddColumn("runs", Column("labels", "text", not_null=True, default="{}")),
        Statement("UPDATE runs SET labels = '{\"day\": 1}' WHERE state = 'succeeded'"),
        Transform("runs", kinds={"exit_code": "text"}),
        RenameColumn("runs", "flags", "marks"),
        DropColumn("runs", "checks"),
        Transform("alerts", not_null={"route": False}, defaults={"message": "(none)"}),
        Table("lanes", (Column("name", "text"), Column("size", "int", not_null=True, default=1)), pk=("name",)),
        Index("lanes_size", "lanes", ("size",), where="size > 1"),
        Seed("lanes", ({"name": "db", "size": 2}, {"name": "gpu", "size": 1})),
    ),
)


def append_a_new_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if A_NEW_STEP were appended to MIGRATIONS (both backends read them by these names)."""
    steps = (*MIGRATIONS, A_NEW_STEP)
    for module in ("sqlite", "postgres"):
        monkeypatch.setattr(f"evman.engine.store.{module}.MIGRATIONS", steps)
        monkeypatch.setattr(f"evman.engine.store.{module}.SCHEMA_VERSION", len(steps))


def check_the_new_step(db: Path | str, before: dict[str, int]) -> None:
    assert kept_every_row(before, counts(db))
    succeeded = rows(db, "SELECT DISTINCT labels FROM runs WHERE state = 'succeeded'")
    others = rows(db, "SELECT DISTINCT labels FROM runs WHERE state <> 'succeeded'")
    assert succeeded == [{"labels": '{"day": 1}'}] and others in ([], [{"labels": "{}"}])
    assert rows(db, "SELECT name, size FROM lanes ORDER BY name") == [
        {"name": "db", "size": 2},
        {"name": "gpu", "size": 1},
    ]
    run = rows(db, "SELECT event, scheduled_for, attempt, marks, exit_code FROM runs ORDER BY id LIMIT 1")
    conn = connect(db)
    try:  # the occurrence key survived the rebuild: a second run of one occurrence is refused
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            conn.execute(
                "INSERT INTO runs (event, state, trigger, scheduled_for, created_at, attempt) VALUES (?, ?, ?, ?, ?, ?)",
                (run[0]["event"], "waiting", "schedule", run[0]["scheduled_for"], "x", run[0]["attempt"]),
            )
    finally:
        conn.close()


def test_a_new_step_migrates_an_earlier_commits_database_once(
    previous: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, indexes = counts(previous), index_names(previous)
    append_a_new_step(monkeypatch)
    open_store(previous).close()
    assert user_version(previous) == SCHEMA_VERSION + 1
    check_the_new_step(previous, before)
    assert index_names(previous) >= indexes | {"lanes_size"}  # the partial indexes of runs and alerts kept
    kinds = {r["name"]: r["type"] for r in rows(previous, "PRAGMA table_info(runs)")}
    assert kinds["exit_code"] == "TEXT" and "flags" not in kinds and "checks" not in kinds
    open_store(tmp_path / "new.db").close()  # and a new file made with the step has the same shape
    assert sqlite_shape(previous) == sqlite_shape(tmp_path / "new.db")
    schema = rows(previous, "SELECT sql FROM sqlite_master")
    open_store(previous).close()  # a second open migrates nothing
    assert rows(previous, "SELECT sql FROM sqlite_master") == schema


def test_a_new_step_migrates_a_database_of_either_backend(
    db_path: Path, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_defs(db_path, '[[event]]\nname = "a"\nrun = "true"\nschedule = "every 1 hour"\n', tmp_path, clock.now())
    conn = connect(db_path)
    try:
        for state, at in (("succeeded", "s1"), ("failed", "s2")):
            conn.execute(
                "INSERT INTO runs (event, state, trigger, scheduled_for, created_at) VALUES ('a', ?, 'schedule', ?, 'c')",
                (state, at),
            )
    finally:
        conn.close()
    before = counts(db_path)
    append_a_new_step(monkeypatch)
    open_store(db_path).close()
    check_the_new_step(db_path, before)
    open_store(db_path).close()
    check_the_new_step(db_path, before)


# -- load's writes ------------------------------------------------------------------------------

FIRST = """
[routes]
ops = ["json://127.0.0.1:9/a"]

[[event]]
name = "up"
run = "true"
schedule = "every 1 hour"

[[event]]
name = "down"
run = "true"
requires = "success(up)"
"""


def test_a_reload_keeps_what_the_engine_wrote_and_replaces_links(
    db_path: Path, clock: FakeClock, tmp_path: Path
) -> None:
    load_defs(db_path, FIRST, tmp_path, clock.now())
    conn = connect(db_path)  # what a hold leaves (the engine's columns), which a reload must keep
    try:
        conn.execute("UPDATE events SET held = 1, held_by = 'me' WHERE name = 'down'")
    finally:
        conn.close()
    created = rows(db_path, "SELECT name, created_at FROM events ORDER BY name")
    clock.advance(timedelta(minutes=5))
    second = FIRST.replace("success(up)", "success(side)").replace("/a", "/b")
    second += '\n[[event]]\nname = "side"\nrun = "true"\n'
    result = load_defs(db_path, second, tmp_path, clock.now(), prune=True)
    assert result == {"added": ["side"], "changed": ["down"], "unchanged": ["up"], "pruned": []}
    events = {r["name"]: r for r in rows(db_path, "SELECT * FROM events")}
    assert {r["name"]: r["created_at"] for r in created} == {n: events[n]["created_at"] for n in ("down", "up")}
    assert events["down"]["held"] == 1 and events["down"]["held_by"] == "me"
    assert events["down"]["updated_at"] > events["down"]["created_at"] and events["side"]["defined"] == 1
    assert rows(db_path, "SELECT upstream, event FROM event_deps") == [{"upstream": "side", "event": "down"}]
    assert "/b" in rows(db_path, "SELECT spec FROM routes WHERE name = 'ops'")[0]["spec"]
    assert rows(db_path, "SELECT value FROM settings WHERE key = 'defs_version'") == [{"value": "2"}]


@pytest.mark.sqlite_only
def test_on_sqlite_sqlite_utils_writes_what_load_writes(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path / "x.db")
    assert isinstance(store, SqliteStore)
    seen: list[str] = []
    try:
        defs = parse_definitions(FIRST, source="d.toml", base_dir=tmp_path, known_events=set())
        with store.db.tracer(lambda sql, params: seen.append(" ".join(sql.split()))):
            catalog.save(store, defs, now=clock.now())
    finally:
        store.close()
    assert any(s.startswith('INSERT INTO "events"') for s in seen)
    assert any(s.startswith('INSERT OR IGNORE INTO "event_deps"') for s in seen)
    assert any(s.startswith('INSERT INTO "routes"') and "ON CONFLICT" in s for s in seen)


def test_a_read_of_an_older_database_says_how_to_upgrade_it_and_leaves_it_untouched(previous: Path) -> None:
    """`evman list` opens read-only: on a file of an earlier schema it says which versions and
    what to do, exits 1, and changes nothing (the engine upgrades it when it starts)."""
    before = previous.read_bytes()
    shown = cli("list", "--db", str(previous))
    assert shown.returncode == 1 and shown.stdout == ""
    assert f"has schema version {user_version(previous)}; this evman needs {SCHEMA_VERSION}" in shown.stderr
    assert "Start the engine on it once" in shown.stderr
    assert previous.read_bytes() == before
