"""An upgrade: a database written by an earlier release (tests/data/upgrade/schema1.db, made by
commit c18d7f1's real engine, and schema2.db by commit cccf2df's, with
tests/data/upgrade/make_fixture.py) is opened by this one, migrated once, keeps every row, and
runs. A downgrade is refused, the file left untouched."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.retention import Housekeeper
from evman.engine.store import SCHEMA_VERSION, StoreError, open_store
from tests.data.upgrade.make_fixture import DEFS

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "upgrade"
TABLES = ("events", "event_deps", "runs", "alerts", "deliveries", "requests", "engine", "routes", "settings")


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in the columns the previous release had."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in TABLES:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
        return out
    finally:
        conn.close()


@pytest.fixture(params=["schema1.db", "schema2.db"])
def old_db(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "evman.db"
    shutil.copyfile(FIXTURES / request.param, path)
    path.chmod(0o600)
    return path


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_the_fixture_is_the_previous_schema_with_history_alerts_and_requests(old_db: Path) -> None:
    rows = dump(old_db)
    assert user_version(old_db) < SCHEMA_VERSION
    assert len(rows["runs"]) == 46 and len(rows["alerts"]) == 5 and len(rows["deliveries"]) == 19
    assert len(rows["requests"]) == 6 and any(r[7] is None for r in rows["requests"])  # one still queued


def test_an_old_database_is_migrated_once_and_keeps_every_row(old_db: Path) -> None:
    before = dump(old_db)
    store = open_store(old_db)
    assert user_version(old_db) == SCHEMA_VERSION
    after = {table: [row[: len(before[table][0])] for row in rows] for table, rows in dump(old_db).items() if rows}
    for table, rows in before.items():
        assert set(rows) <= set(after.get(table, [])), table
    added = {t: set(after[t]) - set(before[t]) for t in after if set(after[t]) - set(before[t])}
    assert added.pop("settings") >= {("housekeeping_at", None)}  # retention's step adds this row
    assert added == {}
    assert store.value("SELECT count(*) FROM runs WHERE log_pruned_at IS NOT NULL") == 0
    store.close()
    schema = sqlite3.connect(old_db).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    open_store(old_db).close()  # a second open migrates nothing
    assert sqlite3.connect(old_db).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_the_upgraded_database_runs(old_db: Path, tmp_path: Path) -> None:
    store = open_store(old_db)
    clock = FakeClock(datetime(2026, 1, 7, 0, 30, tzinfo=UTC))
    text = textwrap.dedent(DEFS).format(port=9, flag=tmp_path / "flag")  # the release's own events, here
    defs = parse_definitions(text, source=str(tmp_path / "defs.toml"), base_dir=tmp_path, known_events=[])
    catalog.save(store, defs, now=clock.now())
    engine = Engine(store, clock=clock, logs_dir=tmp_path / "logs")
    engine.start()  # the old engine row is stale: taken over
    try:
        engine.settle(clock.now(), timeout_s=30)  # the request the old release left queued: trigger fetch
        fetch = store.runs_of("fetch", limit=1)[0]
        assert fetch["state"] == "succeeded" and "fetched" in fetch["output_tail"]
        assert all(r["handled_at"] for r in store.dicts("SELECT * FROM requests"))
        assert [a["event"] for a in store.alerts(open_only=True)] == ["check"]  # its open alert stayed open
    finally:
        engine.executors.shutdown(wait_s=5)
    # the old runs' logs were in a folder long gone: housekeeping marks them pruned, deletes nothing else
    runs = store.value("SELECT count(*) FROM runs")
    report = Housekeeper(store, clock).run_pass(clock.now() + timedelta(days=31))
    assert report.logs > 0 and report.runs == 0  # keep.logs is 30 days, keep.runs 90
    assert store.value("SELECT count(*) FROM runs") == runs


def test_a_database_of_a_newer_release_is_refused_untouched(old_db: Path) -> None:
    conn = sqlite3.connect(old_db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()  # the last connection: its WAL is checkpointed into the file and removed
    digest = hashlib.sha256(old_db.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="newer evman"):
        open_store(old_db)
    assert hashlib.sha256(old_db.read_bytes()).hexdigest() == digest
    assert not Path(str(old_db) + "-wal").exists() or Path(str(old_db) + "-wal").stat().st_size == 0
