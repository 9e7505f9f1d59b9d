"""The store: every SQL statement evman runs, behind a dialect (see HACKING.md)."""
from engine.store.batch import RESOLVED_BY_SUCCESS, Batch
from engine.store.dialect import SQLITE, Dialect
from engine.store.engines import EngineRow
from engine.store.errors import Fenced, StoreError
from engine.store.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION
from engine.store.sqlite import BUSY_TIMEOUT_MS, busy_timeout_ms, check_file_safety, create_private_file
from engine.store.stores import Store

__all__ = [
    "BUSY_TIMEOUT_MS", "Batch", "Dialect", "EngineRow", "Fenced", "MIGRATIONS", "RESOLVED_BY_SUCCESS",
    "RUN_COLUMNS", "SCHEMA_VERSION", "SQLITE", "Store", "StoreError", "busy_timeout_ms",
    "check_file_safety", "create_private_file",
]
