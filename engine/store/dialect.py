"""What differs between the SQL backends, in one value: placeholders, BEGIN, expressions.

Statements under engine/store/ are written once, in `?` style with portable SQL
(`INSERT ... ON CONFLICT DO NOTHING`, `RETURNING`); a dialect turns them into what its
backend runs and fills the few places that cannot be portable (the current time as ISO
text, JSON and time arithmetic, index hints, row locks). The tables are in schema.py."""

from __future__ import annotations

import functools
from typing import Final, NamedTuple


class Dialect(NamedTuple):
    name: str
    """"sqlite" or "postgresql"."""
    paramstyle: str = "?"
    """The placeholder the driver takes; statements are written with `?`."""
    begin_write: str = "BEGIN"
    """How a write transaction starts (SQLite takes its write lock at once with IMMEDIATE)."""
    skip_locked: str = ""
    """Appended to a SELECT that claims rows several engines may race for."""
    now_iso: str = ""
    """An expression for the current UTC time as ISO-8601 text with a Z."""
    hints: bool = False
    """Whether `INDEXED BY` hints are understood."""
    arrays: bool = False
    """Whether a statement may take a column of many rows as one array parameter (`unnest`)."""

    def sql(self, statement: str) -> str:
        """`statement` in this backend's placeholder style."""
        if self.paramstyle == "?":
            return statement
        return _to_format_style(statement)

    def json_number(self, column: str, *path: str) -> str:
        """A number inside a JSON text column, or NULL."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        return f"(({column})::jsonb #>> '{{{','.join(path)}}}')::double precision"

    def seconds_between(self, start: str, end: str) -> str:
        """end - start in seconds, for two ISO text columns."""
        if self.name == "sqlite":
            return f"(julianday({end}) - julianday({start})) * 86400.0"
        return f"extract(epoch from (({end})::timestamptz - ({start})::timestamptz))"

    def indexed_by(self, index: str) -> str:
        return f" INDEXED BY {index}" if self.hints else ""


@functools.lru_cache(maxsize=512)
def _to_format_style(statement: str) -> str:
    """`?` -> `%s` outside quoted text; a literal % doubled, as format style wants."""
    out: list[str] = []
    quoted = False
    for char in statement:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


SQLITE: Final = Dialect(
    name="sqlite",
    paramstyle="?",
    begin_write="BEGIN IMMEDIATE",
    skip_locked="",
    now_iso="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    hints=True,
)
