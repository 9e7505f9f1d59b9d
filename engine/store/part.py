"""What every part of the store stands on: a connection, its dialect, its statements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from evman.engine.store.dialect import Dialect

Row = Any
"""A result row: indexable by position and by column name, and `dict(row)` gives its columns."""


class Part:
    """The base of the store's parts (events, runs, alerts, ...): each part holds the
    statements of one table or concern, and runs them only through these methods, so that a
    connection of another backend can run every part unchanged."""

    dialect: Dialect
    path: Path | None
    """The SQLite file; None for memory and for PostgreSQL (see `url`)."""
    readonly: bool

    @property
    def url(self) -> str:
        """What --db names: a file's path, ":memory:", or a PostgreSQL URL with its password masked."""
        raise NotImplementedError

    @property
    def target(self) -> Path | str | None:
        """What opens this database again in another connection: the file's path, the
        PostgreSQL URL as given (password included), None for memory."""
        return self.path

    def data_version(self) -> int:
        """A number that moves when another connection may have committed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def checkpoint_in_background(self, delay_s: float = 0.25) -> None:
        """SQLite: leave the WAL checkpoints of this connection's commits to a thread of their
        own (the engine's store). Nothing to do elsewhere."""

    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: commit at the end, roll back on any error."""
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (written with `?`); returns the driver's cursor."""
        raise NotImplementedError

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run one statement per row; returns how many rows they changed in all."""
        raise NotImplementedError

    several_engines = False
    """True where engines share the database (PostgreSQL): leases, owners, claims."""

    def claim(self, sql: str, params: Sequence[Any] = (), *, look_first: bool = False) -> list[Row]:
        """Rows of a SELECT that several engines may race for, each locked for this engine
        (the others skip it) until its next write transaction commits; plain rows on SQLite.
        look_first: where it would open the transaction, look without one first and open none
        when nothing is there (a claim that is mostly empty, e.g. the mailbox every tick)."""
        return self.rows(sql + self.dialect.skip_locked, params)

    @property
    def holds_claims(self) -> bool:
        """A claim() left a transaction open, for the next write transaction to commit."""
        return False

    def give_back_pages(self, pages: int) -> None:
        """SQLite: return up to `pages` free pages to the file system (incremental vacuum, one
        short write); nothing elsewhere."""

    def limit_sessions(self, **limits_ms: int) -> None:
        """Server-side time limits for this connection's sessions (PostgreSQL; nothing on SQLite)."""

    def drop_claims(self) -> None:
        """Let go of the rows claimed since the last commit (a tick that failed half-way)."""

    def renew_lease(self, owner: Any) -> None:
        """Several engines: renew `owner`'s lease in this transaction, or raise Fenced (fleet.py)."""
        raise NotImplementedError

    def refused_why(self, owner: Any, sql: str, rows: Sequence[Sequence[Any]]) -> str:
        raise NotImplementedError

    def inserted_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """executemany of an INSERT ... RETURNING id: the ids it inserted."""
        raise NotImplementedError

    # -- rows by column name: what `evman load` writes (sqlite-utils does it on SQLite) -----------

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], *, ignore: bool = False) -> None:
        """INSERT each row (all with the same keys, the columns); ignore: skip a row whose key exists."""
        if rows:
            cols = list(rows[0])
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
            self.execute_many(sql + (" ON CONFLICT DO NOTHING" if ignore else ""), [[r[c] for c in cols] for r in rows])

    def upsert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], pk: str) -> None:
        """INSERT each whole row, or UPDATE its other columns where its key `pk` exists."""
        if rows:
            cols = list(rows[0])
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != pk)
            sql = (
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
                f"ON CONFLICT ({pk}) DO UPDATE SET {sets}"
            )
            self.execute_many(sql, [[r[c] for c in cols] for r in rows])

    def update_rows(self, table: str, rows: Sequence[Mapping[str, Any]], pk: str) -> None:
        """UPDATE the columns each row names (all with the same keys) where its key `pk` is."""
        if rows:
            cols = [c for c in rows[0] if c != pk]
            sql = f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in cols)} WHERE {pk} = ?"
            self.execute_many(sql, [[*(r[c] for c in cols), r[pk]] for r in rows])

    def delete_rows(self, table: str, column: str, values: Sequence[Any]) -> None:
        """DELETE the rows whose `column` holds one of `values`."""
        self.execute_many(f"DELETE FROM {table} WHERE {column} = ?", [(v,) for v in values])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.execute(sql, params).fetchall())

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.row(sql, params)
        return None if found is None else found[0]

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows(sql, params)]

    def one_dict(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.row(sql, params)
        return None if found is None else dict(found)


def in_chunks(values: Sequence[Any], size: int = 500) -> Iterable[tuple[list[Any], str]]:
    """(chunk, "?,?,...") pairs: an IN list of at most `size` values per statement."""
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        yield chunk, ",".join("?" for _ in chunk)
