"""PostgreSQL fixtures: one real server for the session, a fresh database for each test.

Without PostgreSQL (or psycopg) on a developer's machine the PostgreSQL tests are skipped
with the reason; under CI (CI set) they fail instead, so a CI run always exercises them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.pgserver import PgMissing, PgServer

_names = itertools.count(1)


def unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests, but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server on a Unix socket in a temporary folder, started on first use."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable(
            "psycopg is not installed (the postgres extra): run `uv sync`, or "
            "`uv sync --extra postgres` without the dev group"
        )
    try:
        server = PgServer().start()
    except PgMissing as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A libpq URL to a new, empty database of its own; dropped after the test."""
    name = f"evman_test_{os.getpid()}_{next(_names)}"
    dsn = pg_server.create_database(name)
    yield dsn
    pg_server.drop_database(name)
