"""The store: every SQL statement evman runs, behind a dialect (see HACKING.md). PgStore is
imported when first named (or a PostgreSQL target opened): a SQLite store never loads it."""

from typing import TYPE_CHECKING, Any

from evman.engine.store.batch import RESOLVED_BY_SUCCESS, Batch
from evman.engine.store.dialect import SQLITE, Dialect
from evman.engine.store.engines import EngineRow
from evman.engine.store.errors import Fenced, StoreError, Unreachable
from evman.engine.store.opening import is_pg_store, open_store
from evman.engine.store.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION
from evman.engine.store.sqlite import BUSY_TIMEOUT_MS, busy_timeout_ms, check_file_safety, create_private_file
from evman.engine.store.stores import SqliteStore, Store

if TYPE_CHECKING:
    from evman.engine.store.pg_store import PgStore

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Batch",
    "Dialect",
    "EngineRow",
    "Fenced",
    "MIGRATIONS",
    "RESOLVED_BY_SUCCESS",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "SQLITE",
    "PgStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "Unreachable",
    "busy_timeout_ms",
    "check_file_safety",
    "create_private_file",
    "is_pg_store",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "PgStore":
        from evman.engine.store.pg_store import PgStore

        return PgStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
