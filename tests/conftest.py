"""Shared fixtures: a real database (a SQLite file, or a PostgreSQL database for tests marked
`backends`, which run once on each), a fake clock, an engine wired to both."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store

pytest_plugins = ["tests.pg_fixtures"]

START = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)  # a Monday, just after midnight UTC


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends: run the test on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only: a test of the SQLite file itself, in a backends module")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("backends") is not None
    if marked and metafunc.definition.get_closest_marker("sqlite_only") is None and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" unless the test is one of a `backends` module's pair."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_path(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """The database: a file in tmp_path, or (backend postgres) the URL of a fresh PostgreSQL
    database, which every helper that takes a path also takes."""
    if backend == "postgres":
        return request.getfixturevalue("pg_dsn")
    return tmp_path / "evman.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = open_store(db_path)
    yield s
    s.close()


def load_text(store: Store, text: str, base_dir: Path, now: datetime, *, prune: bool = False) -> None:
    defs = parse_definitions(
        textwrap.dedent(text), source=str(base_dir / "defs.toml"), base_dir=base_dir, known_events=store.event_names()
    )
    catalog.save(store, defs, now=now, prune=prune)


@pytest.fixture
def engine_factory(store: Store, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """make(defs_text) -> a started Engine on the fixture store and fake clock."""
    made: list[Engine] = []

    def make(text: str | None = None, **kwargs: Any) -> Engine:
        if text is not None:
            load_text(store, text, tmp_path, clock.now())
        kwargs.setdefault("logs_dir", tmp_path / "evman.db.logs")
        engine = Engine(store, clock=clock, **kwargs)
        engine.start()
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.executors.shutdown(wait_s=0)
