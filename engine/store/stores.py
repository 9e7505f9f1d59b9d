"""The store: every part (events, runs, alerts, requests, engines, reads, writes) over one connection."""

from __future__ import annotations

from typing import Any

from evman.engine.store.alerts import AlertsPart
from evman.engine.store.batch import BatchPart
from evman.engine.store.engines import EnginesPart
from evman.engine.store.events import EventsPart
from evman.engine.store.fleet import FleetPart
from evman.engine.store.pools import PoolsPart
from evman.engine.store.postgres import PgConnection, is_url
from evman.engine.store.reads import ReadsPart
from evman.engine.store.requests import RequestsPart
from evman.engine.store.retention import RetentionPart
from evman.engine.store.runs import RunsPart
from evman.engine.store.sqlite import SqliteConnection
from evman.engine.store.watching import WatchPart


class Parts(
    EventsPart,
    RunsPart,
    AlertsPart,
    RequestsPart,
    EnginesPart,
    ReadsPart,
    RetentionPart,
    WatchPart,
    BatchPart,
    PoolsPart,
):
    """Every statement evman runs, written once for every backend."""


class Store(Parts):
    """An evman database. `Store(PATH)` (or `Store(memory=True)`) opens a SQLite file;
    `Store("postgresql://...")` a PostgreSQL database (the postgres extra). Every caller opens
    either the same way, and gets the backend's class, a Store."""

    def __new__(cls, target: Any = None, *args: Any, **kwargs: Any) -> Store:
        if cls is Store:
            cls = PgStore if is_url(target) else SqliteStore
        return super().__new__(cls)


class SqliteStore(Store, SqliteConnection):
    """An evman SQLite database (a file, or memory with memory=True): one engine at a time."""


class PgStore(FleetPart, Store, PgConnection):
    """An evman PostgreSQL database: several engines, each with a lease (see fleet.py)."""
