"""A PostgreSQL database as evman's store: schema and migrations, refusals, reconnects, the
`--db postgresql://` CLI with the same JSON as SQLite, and the missing extra said in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evman.engine.store import SCHEMA_VERSION, Store, StoreError, open_store
from evman.engine.store.pg_store import PgStore
from evman.engine.store.postgres import FLEET_MIGRATIONS, masked
from evman.engine.store.stores import SqliteStore
from tests.outside import ROOT, evman_argv, rows
from tests.pgserver import PgServer

psycopg = pytest.importorskip("psycopg")

DEFS = """
[defaults]
timezone = "UTC"

[[event]]
name = "fetch"
run = "true"
schedule = "*/15 * * * *"
on_success = ["publish"]

[[event]]
name = "publish"
shell = "echo published"
"""


def evman(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        evman_argv(*args), capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def settings(dsn: str) -> dict[str, str]:
    return {r["key"]: r["value"] for r in rows(dsn, "SELECT key, value FROM settings")}


def test_store_of_a_url_is_postgresql_and_of_a_path_sqlite(pg_dsn: str, tmp_path: Path) -> None:
    pg, lite = open_store(pg_dsn), open_store(tmp_path / "x.db")
    try:
        assert isinstance(pg, PgStore) and isinstance(pg, Store)
        assert isinstance(lite, SqliteStore) and isinstance(lite, Store)
        assert pg.path is None and pg.target == pg_dsn
    finally:
        pg.close()
        lite.close()


def test_a_new_database_gets_the_schema_once_and_reopening_keeps_data(pg_dsn: str) -> None:
    store = open_store(pg_dsn)
    request_id = store.add_request("trigger", "x", requested_by="test")
    store.close()
    assert settings(pg_dsn)["schema_version"] == str(SCHEMA_VERSION)
    assert settings(pg_dsn)["fleet_version"] == str(len(FLEET_MIGRATIONS))
    tables = {r["tablename"] for r in rows(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"events", "runs", "alerts", "requests", "engine", "engines", "settings"} <= tables
    open_store(pg_dsn).close()
    assert [r["id"] for r in rows(pg_dsn, "SELECT id FROM requests")] == [request_id]


def test_a_newer_schema_is_refused_and_left_untouched(pg_dsn: str) -> None:
    open_store(pg_dsn).close()
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute("UPDATE settings SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 9),))
    conn.close()
    with pytest.raises(StoreError) as caught:
        open_store(pg_dsn)
    assert f"schema {SCHEMA_VERSION + 9}" in str(caught.value) and "Upgrade evman" in str(caught.value)
    assert settings(pg_dsn)["schema_version"] == str(SCHEMA_VERSION + 9)


def test_another_programs_database_is_refused_untouched(pg_dsn: str) -> None:
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute("CREATE TABLE invoices (id int)")
    conn.close()
    with pytest.raises(StoreError) as caught:
        open_store(pg_dsn)
    assert "tables of another program" in str(caught.value)
    tables = {r["tablename"] for r in rows(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"invoices"}


def test_an_engine_on_an_empty_database_says_to_load_first(pg_dsn: str) -> None:
    done = evman("--no-ui", "--db", pg_dsn)
    assert done.returncode == 1
    assert "has no evman tables yet" in done.stderr and "evman load" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_server_that_is_not_there_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    url = f"postgresql://evman:s3cret@/nowhere?host={tmp_path}"
    done = evman("list", "--db", url)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot connect to" in done.stderr
    assert "s3cret" not in done.stderr and "evman:****@" in done.stderr
    assert masked("postgresql://a:b@h/d") == "postgresql://a:****@h/d"


def test_without_the_postgres_extra_the_error_names_it() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; from evman.console.cli import main; "
        "main(['list', '--db', 'postgresql://evman@localhost/x'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "evman: --db postgresql://... needs the postgres extra (psycopg 3): "
        "pip install 'evman[postgres]', or uv sync --extra postgres"
    )


def test_a_cut_connection_fails_one_statement_and_the_next_reconnects(pg_server: PgServer, pg_dsn: str) -> None:
    store = open_store(pg_dsn)
    try:
        store.add_request("trigger", "x", requested_by="test")
        admin = psycopg.connect(pg_dsn, autocommit=True)
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'evman pid %%' AND pid <> pg_backend_pid()"
        )
        admin.close()
        with pytest.raises(StoreError, match="the connection failed"):
            store.open_requests()
        assert [r["target"] for r in store.open_requests()] == ["x"]
        pg_server.restart()
        with pytest.raises(StoreError):
            store.open_requests()
        assert len(store.open_requests()) == 1
    finally:
        store.close()


def test_every_verb_takes_a_url_and_prints_the_same_json_as_for_a_file(pg_dsn: str, tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text(textwrap.dedent(DEFS))
    shapes = {}
    for target in (str(tmp_path / "evman.db"), pg_dsn):
        loaded = evman("load", str(defs), "--db", target)
        assert loaded.returncode == 0, loaded.stderr
        queued = evman("trigger", "publish", "--db", target, "--wait", "0")
        assert queued.returncode == 0 and "queued as request" in queued.stdout, queued.stderr
        got = {}
        for verb in (["list"], ["show", "fetch"], ["history"], ["alerts"], ["next", "fetch", "-n", "2"], ["engines"]):
            done = evman(*verb, "--json", "--db", target)
            assert done.returncode == 0, done.stderr
            got[verb[0]] = json.loads(done.stdout)
        shapes[target.split(":")[0]] = got
    lite, pg = shapes[str(tmp_path / "evman.db").split(":")[0]], shapes["postgresql"]
    assert [e["name"] for e in pg["list"]] == ["fetch", "publish"]
    assert pg["list"][0].keys() == lite["list"][0].keys()
    assert pg["show"].keys() == lite["show"].keys()
    assert pg["next"]["fires"] == lite["next"]["fires"]
    assert pg["engines"] == [] and lite["engines"] == []
    export = evman("export", "--db", pg_dsn)
    assert export.returncode == 0 and 'name = "publish"' in export.stdout


def test_evman_db_names_the_database_for_every_verb(pg_dsn: str, tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text(textwrap.dedent(DEFS))
    assert evman("load", str(defs), env={"EVMAN_DB": pg_dsn}).returncode == 0
    listed = evman("list", "--json", env={"EVMAN_DB": pg_dsn})
    assert [e["name"] for e in json.loads(listed.stdout)] == ["fetch", "publish"]
