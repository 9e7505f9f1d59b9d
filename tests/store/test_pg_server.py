"""The test PostgreSQL server itself: socket only, fast settings, a database per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pgserver import PgServer

pytest.importorskip("psycopg")
import psycopg


def test_the_server_listens_on_its_socket_only_with_fsync_off(pg_server: PgServer, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'fsync', 'unix_socket_directories', 'port')"
            ).fetchall()
        )
    assert settings["listen_addresses"] == ""
    assert settings["fsync"] == "off"
    assert settings["unix_socket_directories"] == str(pg_server.socket_dir)
    port = settings["port"]
    assert (Path(pg_server.socket_dir) / f".s.PGSQL.{port}").exists()


def test_each_test_gets_a_database_of_its_own(pg_server: PgServer, pg_dsn: str) -> None:
    other = pg_server.create_database("evman_scratch_other")
    try:
        with psycopg.connect(pg_dsn) as a, psycopg.connect(other) as b:
            a.execute("CREATE TABLE mine (x int)")
            a.commit()
            rows = b.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'mine'").fetchone()
            assert rows == (0,)
    finally:
        pg_server.drop_database("evman_scratch_other")
