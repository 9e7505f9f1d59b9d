"""The store: every part (events, runs, alerts, requests, engines, reads, writes) over one connection."""

from __future__ import annotations

from pathlib import Path

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
    """An evman database, whichever its backend: what code that reads and writes one is typed
    with. open_store() opens one; a PostgreSQL database's own (fleet) statements are PgStore's,
    reached after `isinstance(store, PgStore)`."""


class SqliteStore(Store, SqliteConnection):
    """An evman SQLite database (a file, or memory with memory=True): one engine at a time."""


class PgStore(FleetPart, Store, PgConnection):
    """An evman PostgreSQL database: several engines, each with a lease (see fleet.py)."""


def open_store(
    target: Path | str | None = None, *, memory: bool = False, create: bool = True, readonly: bool = False
) -> SqliteStore | PgStore:
    """The database `target` names: a postgresql:// URL opens a PgStore (the postgres extra),
    anything else a SQLite file (memory=True: a database in memory). create=False refuses a
    file that does not exist yet."""
    if is_url(target):
        return PgStore(str(target), create=create, readonly=readonly)
    return SqliteStore(target, memory=memory, create=create, readonly=readonly)
