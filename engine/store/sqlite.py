"""The SQLite file: opening it safely, WAL, transactions, migrations, errors in words."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from evman.engine.store.checkpoints import DELAY_S, SAFETY_NET_PAGES, Checkpointer
from evman.engine.store.dialect import SQLITE
from evman.engine.store.errors import StoreError
from evman.engine.store.part import Part, in_chunks
from evman.engine.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_MS: Final = 10_000
"""How long a statement waits for another writer's lock; EVMAN_BUSY_TIMEOUT_MS overrides it."""


def _null(_value: None) -> None:
    return None


# Python 3.11's sqlite3 binds a None through its adaptation protocol, whose look-up of
# `__adapt__` on the protocol's type fails with a formatted AttributeError: ~2 µs per NULL
# parameter, and a run's row has about 15 (a tenth of the tick that writes a burst, bench W1,
# by callgrind). An adapter registered for None is found first, and binds the same NULL.
sqlite3.register_adapter(type(None), _null)


_GATES: dict[str, threading.RLock] = {}
_GATES_GUARD = threading.Lock()


def write_gate(path: Path) -> threading.RLock:
    """The lock every connection of this process to the file at `path` holds around its write
    transactions. Writers in one process (the engine's tick, the housekeeper's batches, the
    console's requests) then queue on it, and the next starts as soon as the last commits;
    left to SQLite's busy handler, a writer that finds the file locked sleeps 1, 2, 5, 10 ms
    and more before it looks again (a tick waited 18.7 ms for a batch of ~5 ms, bench W8).
    Other processes still meet SQLite's own lock and its busy timeout."""
    key = os.path.realpath(path)
    with _GATES_GUARD:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = threading.RLock()
        return gate


def busy_timeout_ms() -> int:
    """EVMAN_BUSY_TIMEOUT_MS when it holds a whole number of 0 or more, else BUSY_TIMEOUT_MS."""
    text = os.environ.get("EVMAN_BUSY_TIMEOUT_MS", "").strip()
    return int(text) if text.isdigit() else BUSY_TIMEOUT_MS


def create_private_file(path: Path) -> None:
    """Create `path` with mode 0600 if it does not exist (SQLite gives -wal/-shm the same mode)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def check_file_safety(path: Path) -> None:
    """Refuse a database file that other users can write."""
    mode = path.stat().st_mode
    if mode & 0o022:
        raise StoreError(
            f"{path} can be written by other users (mode {mode & 0o777:o}); anyone could queue "
            f"commands through it. Run: chmod 600 {path}"
        )


class SqliteConnection(Part):
    """One connection to an evman SQLite file (or to memory). Not shared between threads
    without care: give each thread its own Store (they are cheap)."""

    dialect = SQLITE

    def __init__(
        self, path: str | Path | None = None, *, memory: bool = False, create: bool = True, readonly: bool = False
    ) -> None:
        self.path = None if memory or path is None else Path(path)
        self.readonly = readonly
        self.busy_timeout_ms = busy_timeout_ms()
        self._lock = threading.RLock()
        self._gate = write_gate(self.path) if self.path is not None and not readonly else None
        self._checkpointer: Checkpointer | None = None
        self.conn = self._connect(create=create)
        self._migrate()

    @property
    def url(self) -> str:
        """What --db names: the file's path, or ":memory:"."""
        return str(self.path) if self.path is not None else ":memory:"

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over this connection: it migrates the schema and does `load`'s writes.
        Imported on first use: sqlite-utils costs ~100 ms to import, most of `evman list`'s
        start-up. No plugins, and the connection's pragmas are left as they are."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn, recursive_triggers=False, execute_plugins=False)

    # -- running statements ----------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        before = self.conn.total_changes
        self.conn.executemany(sql, rows)
        return self.conn.total_changes - before

    # -- rows by column name, through sqlite-utils (the store's other writes are SQL) -----------

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], *, ignore: bool = False) -> None:
        if rows:
            self.db.table(table).insert_all([dict(r) for r in rows], ignore=ignore)

    def upsert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], pk: str) -> None:
        if rows:
            self.db.table(table).upsert_all([dict(r) for r in rows], pk=pk)

    def update_rows(self, table: str, rows: Sequence[Mapping[str, Any]], pk: str) -> None:
        into = self.db.table(table)
        for row in rows:
            into.update(row[pk], {c: v for c, v in row.items() if c != pk})

    def delete_rows(self, table: str, column: str, values: Sequence[Any]) -> None:
        for chunk, marks in in_chunks(list(values)):
            self.db.table(table).delete_where(f"{column} IN ({marks})", chunk)

    def give_back_pages(self, pages: int) -> None:
        """Return up to `pages` free pages to the file system (one short write). Through
        executescript, which steps the statement to its end: Python's execute steps it once,
        and each step gives back one page."""
        with self._lock, self.writing():
            self.conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap 'did anyone write?'."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.conn.close()

    def checkpoint_in_background(self, delay_s: float = DELAY_S) -> None:
        """Leave this connection's WAL checkpoints to a thread of their own (the engine's
        store: a tick must not wait for one; see checkpoints.py)."""
        if self._checkpointer is not None or self.path is None or self.readonly:
            return
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}")
        self._checkpointer = Checkpointer(self.path, delay_s)

    # -- opening ---------------------------------------------------------------

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        else:
            conn = self._connect_file(create=create)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(self._not_a_database(exc)) from exc
        return conn

    def _use_wal(self) -> None:
        """WAL only once the file is known to be ours: switching writes the file header."""
        if self.path is None or self.readonly:
            return
        try:
            self.conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            raise StoreError(self._locked_message(exc)) from exc

    def _connect_file(self, *, create: bool) -> sqlite3.Connection:
        assert self.path is not None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database. Use --db PATH to a file.")
        if not self.path.exists():
            if not create or self.readonly:
                raise StoreError(
                    f"{self.path} does not exist. Create it with: evman load DEFINITIONS.toml --db {self.path}"
                )
            try:
                create_private_file(self.path)
            except OSError as exc:
                raise StoreError(f"Cannot create {self.path}: {exc.strerror}.") from exc
        else:
            check_file_safety(self.path)
        if self.readonly or not os.access(self.path, os.W_OK):
            self.readonly = True
            uri = f"file:{self.path}?mode=ro"
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _not_a_database(self, exc: BaseException) -> str:
        return (
            f"{self.path or ':memory:'} is not an evman database ({exc}). "
            f"Check the --db path; evman will not touch this file."
        )

    def _migrate(self) -> None:
        try:
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._not_a_database(exc)) from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer evman (schema {version}; this one knows "
                f"{SCHEMA_VERSION}). Upgrade evman; this database was left untouched."
            )
        if version == 0 and self._has_foreign_tables():
            raise StoreError(
                f"{self.path} is a SQLite database of another program (it has tables but no evman "
                f"schema). Use --db PATH to choose another file; this one was left untouched."
            )
        if version == 0 and not self.readonly:  # before WAL and the first table, or it cannot change
            self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # housekeeping gives freed pages back
        self._use_wal()
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise StoreError(
                f"{self.path} has schema version {version}; this evman needs {SCHEMA_VERSION}, and opened it "
                f"read-only. Start the engine on it once (evman --db {self.path}, or evman --no-ui): it "
                f"upgrades the file in place, keeping every row."
            )
        from evman.engine.store import sqlite_schema

        for step in range(version, SCHEMA_VERSION):
            with self.transaction():
                sqlite_schema.apply(self.db, MIGRATIONS[step], self.dialect.now_iso)
                self.conn.execute(f"PRAGMA user_version = {step + 1}")

    def _has_foreign_tables(self) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()
        return bool(row[0])

    # -- transactions ----------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this process's write gate of the file (see write_gate) for a write; waits at
        most the busy timeout, as SQLite's own lock would."""
        gate = self._gate
        if gate is None:
            yield
            return
        if not gate.acquire(timeout=self.busy_timeout_ms / 1000):
            raise StoreError(self._locked_message(sqlite3.OperationalError("database is locked")))
        try:
            yield
        finally:
            gate.release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any error."""
        with self._lock, self.writing():
            try:
                self.conn.execute(self.dialect.begin_write)
            except sqlite3.OperationalError as exc:
                raise StoreError(self._locked_message(exc)) from exc
            try:
                yield self.conn
            except sqlite3.OperationalError as exc:  # read-only, disk full, locked: say it in words
                self._rollback()
                raise StoreError(self._locked_message(exc)) from exc
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    self._rollback()
                    raise StoreError(self._locked_message(exc)) from exc
                if self._checkpointer is not None:
                    self._checkpointer.wrote()

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open: after some errors (a full disk) SQLite has
        rolled it back already, and a second ROLLBACK would hide the first error."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _locked_message(self, exc: sqlite3.OperationalError) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (
                f"{self.path} stayed locked by another writer for {self.busy_timeout_ms / 1000:g} s. "
                f"Try again; if it persists, look for a stuck process holding it."
            )
        if "readonly" in text or "read-only" in text:
            return f"{self.path} is read-only; evman cannot record changes. Check its permissions."
        if "full" in text:
            return f"{self.path}: the disk or database is full ({text}). Free space; nothing was lost."
        return f"{self.path}: {text}"
