"""SQLite's schema steps, applied with sqlite-utils: tables, columns, transforms and seed rows
(renaming and dropping a column are ALTER TABLE, which SQLite does itself).

Imported only to migrate: a database that is current never loads sqlite-utils (`evman list`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sqlite_utils import Database

from evman.engine.store.ddl import (
    AddColumn,
    Default,
    DropColumn,
    Index,
    Kind,
    Now,
    RenameColumn,
    Seed,
    Statement,
    Step,
    Table,
    Transform,
)

TYPES: Final[dict[Kind, type]] = {"id": int, "int": int, "real": float, "text": str}
"""sqlite-utils' column types: INTEGER (an "id" pk is INTEGER PRIMARY KEY, the rowid), REAL, TEXT."""


def apply(db: Database, step: Step, now_sql: str) -> None:
    """Run `step`'s ops on `db`, inside the caller's transaction. `now_sql`: the time as ISO text."""
    for op in step.ops:
        OPS[type(op)](db, op, now_sql)


def default_sql(value: Default, now_sql: str) -> Any:
    """A default as sqlite-utils takes it: numbers as they are, text quoted, NOW an expression."""
    if isinstance(value, Now):
        return now_sql
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return value


def _table(db: Database, op: Table, now_sql: str) -> None:
    db.create_table(
        op.name,
        {c.name: TYPES[c.kind] for c in op.columns},
        pk=op.pk[0] if len(op.pk) == 1 else op.pk,
        not_null={c.name for c in op.columns if c.not_null},
        defaults={c.name: default_sql(c.default, now_sql) for c in op.columns if c.default is not None},
    )


def _index(db: Database, op: Index, now_sql: str) -> None:
    if op.where:  # sqlite-utils' create_index has no WHERE: the statement PostgreSQL runs too
        db.execute(op.sql())
    else:
        db.table(op.table).create_index(op.columns, index_name=op.name, unique=op.unique)


def _add_column(db: Database, op: AddColumn, now_sql: str) -> None:
    column = op.column
    filler = default_sql(column.default, now_sql) if column.not_null else None
    db.table(op.table).add_column(column.name, TYPES[column.kind], not_null_default=filler)


def _transform(db: Database, op: Transform, now_sql: str) -> None:
    db.table(op.table).transform(
        types={name: TYPES[kind] for name, kind in op.kinds.items()},
        not_null=dict(op.not_null) or None,
        defaults={name: default_sql(value, now_sql) for name, value in op.defaults.items()} or None,
    )


def _rename_column(db: Database, op: RenameColumn, now_sql: str) -> None:
    db.execute(f"ALTER TABLE {op.table} RENAME COLUMN {op.old} TO {op.new}")


def _drop_column(db: Database, op: DropColumn, now_sql: str) -> None:
    db.execute(f"ALTER TABLE {op.table} DROP COLUMN {op.column}")


def _seed(db: Database, op: Seed, now_sql: str) -> None:
    db.table(op.table).insert_all([dict(row) for row in op.rows])


def _statement(db: Database, op: Statement, now_sql: str) -> None:
    db.execute(op.sql)


OPS: Final[dict[type, Callable[[Database, Any, str], None]]] = {
    Table: _table,
    Index: _index,
    AddColumn: _add_column,
    Transform: _transform,
    RenameColumn: _rename_column,
    DropColumn: _drop_column,
    Seed: _seed,
    Statement: _statement,
}
"""How each kind of op is done: sqlite-utils applies for it (a test checks every op has one)."""
