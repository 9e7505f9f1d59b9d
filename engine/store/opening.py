"""open_store: the database a target names, SQLite or PostgreSQL; is_pg_store: whether a store is
a PostgreSQL one, asked without importing PgStore's module for a SQLite store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from evman.engine.store.stores import SqliteStore, Store
from evman.engine.store.targets import is_url

if TYPE_CHECKING:
    from evman.engine.store.pg_store import PgStore

PG_STORE_MODULE = "evman.engine.store.pg_store"


def open_store(
    target: Path | str | None = None, *, memory: bool = False, create: bool = True, readonly: bool = False
) -> SqliteStore | PgStore:
    """The database `target` names: a postgresql:// URL opens a PgStore (the postgres extra),
    anything else a SQLite file (memory=True: a database in memory). create=False refuses a
    file that does not exist yet."""
    if is_url(target):
        from evman.engine.store.pg_store import PgStore

        return PgStore(str(target), create=create, readonly=readonly)
    return SqliteStore(target, memory=memory, create=create, readonly=readonly)


def is_pg_store(store: Store) -> TypeGuard[PgStore]:
    """`isinstance(store, PgStore)` (mypy narrows on it the same way), without importing PgStore's
    module: a store can only be a PgStore once that module was imported."""
    module = sys.modules.get(PG_STORE_MODULE)
    return module is not None and isinstance(store, module.PgStore)
