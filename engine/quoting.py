"""Quoting user values in messages: short ones whole, long ones cut, so no error echoes huge input."""
from __future__ import annotations

from typing import Final

QUOTE_LIMIT: Final = 80
"""Characters of a value a message shows before it cuts the rest."""


def quoted(value: str, limit: int = QUOTE_LIMIT) -> str:
    """`value` as a Python literal ('fetch-feeds'); past `limit` characters cut with an
    ellipsis and its length: 'aaaa…' (100,000 characters)."""
    if len(value) <= limit:
        return repr(value)
    head = repr(value[:limit])
    return f"{head[:-1]}…{head[-1]} ({len(value):,} characters)"

