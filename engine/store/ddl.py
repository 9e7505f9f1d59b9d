"""The words a schema step is written in: tables, columns, indexes and changes to them, as data.

Both backends are built from the same steps: SQLite applies them with sqlite-utils
(`sqlite_schema.py`), PostgreSQL runs the DDL `pg_schema.py` writes for them. A step says what
the tables become, never how one backend gets there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

# NamedTuples, not dataclasses: evman list imports this module, and a frozen dataclass costs
# about half a millisecond of start-up to create, a NamedTuple a twentieth of that.

Kind = Literal["id", "int", "real", "text"]
"""A column's kind: "id" is an integer primary key the database numbers (the table's pk)."""


class Now:
    """A column default: the current UTC time as ISO text, written by the database."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOW"


NOW: Final = Now()
Default = int | float | str | Now | None
NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})


class Column(NamedTuple):
    name: str
    kind: Kind
    not_null: bool = False
    default: Default = None
    """A number, a text (stored as written), NOW, or None for no default."""


class Table(NamedTuple):
    """CREATE TABLE. `pk` names the primary key's columns; a kind "id" column must be it alone."""

    name: str
    columns: tuple[Column, ...]
    pk: tuple[str, ...] = ("id",)


class Index(NamedTuple):
    """CREATE [UNIQUE] INDEX name ON table(columns) [WHERE where]; `where` is SQL both backends read."""

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str = ""

    def sql(self) -> str:
        unique = "UNIQUE " if self.unique else ""
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE {unique}INDEX {self.name} ON {self.table}({', '.join(self.columns)}){where}"


class AddColumn(NamedTuple):
    """ALTER TABLE ... ADD COLUMN. A default needs NOT NULL (what sqlite-utils' add_column adds),
    and a constant: SQLite cannot add a column whose default is NOW."""

    table: str
    column: Column


class Transform(NamedTuple):
    """What ALTER TABLE cannot do on SQLite: change a column's kind, set or clear NOT NULL, set or
    clear defaults (None). sqlite-utils' transform() rebuilds the table there, keeping its rows,
    indexes, and UNIQUE and CHECK constraints; PostgreSQL gets ALTER TABLE statements."""

    table: str
    kinds: Mapping[str, Kind] = NOTHING
    not_null: Mapping[str, bool] = NOTHING
    defaults: Mapping[str, Default] = NOTHING


class RenameColumn(NamedTuple):
    """ALTER TABLE ... RENAME COLUMN, on both (indexes follow the new name)."""

    table: str
    old: str
    new: str


class DropColumn(NamedTuple):
    """ALTER TABLE ... DROP COLUMN, on both. SQLite refuses a column an index, a key or a
    partial index's WHERE uses: drop that index first (a Statement), or the step fails."""

    table: str
    column: str


class Seed(NamedTuple):
    """Rows a new table starts with (INSERT)."""

    table: str
    rows: tuple[Mapping[str, Any], ...]


class Statement(NamedTuple):
    """One SQL statement both backends run as written (a backfill, a view): portable SQL only."""

    sql: str


Op = Table | Index | AddColumn | Transform | RenameColumn | DropColumn | Seed | Statement


class Step(NamedTuple):
    """One schema version: its ops run in order, in one transaction, and move the version by one."""

    why: str
    ops: tuple[Op, ...]


def check(steps: Iterable[Step]) -> None:
    """Refuse, with what to do instead, an op one of the backends could not apply."""
    for op in (op for step in steps for op in step.ops):
        if isinstance(op, Table):
            _check_table(op)
        elif isinstance(op, AddColumn):
            _check_add_column(op)


def _check_table(op: Table) -> None:
    names = [c.name for c in op.columns]
    ids = [c.name for c in op.columns if c.kind == "id"]
    if [p for p in op.pk if p not in names] or (ids and tuple(ids) != op.pk):
        raise ValueError(f"table {op.name}: pk {op.pk} must name its columns, and an 'id' column is the pk")


def _check_add_column(op: AddColumn) -> None:
    column = op.column
    where = f"AddColumn {op.table}.{column.name}"
    if column.kind == "id":
        raise ValueError(f"{where}: an 'id' column is a new table's primary key")
    if column.default is not None and not column.not_null or isinstance(column.default, Now):
        raise ValueError(
            f"{where}: a default needs not_null=True and a constant; "
            "for anything else add the column plainly and fill it with a Statement"
        )
    if column.not_null and column.default is None:
        raise ValueError(f"{where}: a NOT NULL column needs a default for old rows")


def columns_after(steps: Iterable[Step], table: str) -> tuple[str, ...]:
    """The columns of `table`, in order, once every step has run."""
    columns: list[str] = []
    for op in (op for step in steps for op in step.ops):
        if isinstance(op, Table) and op.name == table:
            columns = [c.name for c in op.columns]
        elif isinstance(op, AddColumn) and op.table == table:
            columns.append(op.column.name)
        elif isinstance(op, RenameColumn) and op.table == table:
            columns = [op.new if c == op.old else c for c in columns]
        elif isinstance(op, DropColumn) and op.table == table:
            columns.remove(op.column)
    return tuple(columns)
