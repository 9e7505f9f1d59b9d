"""The store: every SQL statement evman runs, behind a dialect (see HACKING.md)."""

from evman.engine.store.batch import RESOLVED_BY_SUCCESS, Batch
from evman.engine.store.dialect import SQLITE, Dialect
from evman.engine.store.engines import EngineRow
from evman.engine.store.errors import Fenced, StoreError, Unreachable
from evman.engine.store.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION
from evman.engine.store.sqlite import BUSY_TIMEOUT_MS, busy_timeout_ms, check_file_safety, create_private_file
from evman.engine.store.stores import PgStore, SqliteStore, Store, open_store

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
    "open_store",
]
