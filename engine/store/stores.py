"""The store: every part (events, runs, alerts, requests, engines, reads, writes) over one connection."""

from __future__ import annotations

from evman.engine.store.alerts import AlertsPart
from evman.engine.store.batch import BatchPart
from evman.engine.store.engines import EnginesPart
from evman.engine.store.events import EventsPart
from evman.engine.store.pools import PoolsPart
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
    with. open_store() (opening.py) opens one; a PostgreSQL database's own (fleet) statements are
    PgStore's (pg_store.py), reached after `is_pg_store(store)`, which mypy narrows like isinstance."""


class SqliteStore(Store, SqliteConnection):
    """An evman SQLite database (a file, or memory with memory=True): one engine at a time."""
