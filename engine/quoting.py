"""Quoting user values in messages: short ones whole, long ones cut, so no error echoes huge input."""

from __future__ import annotations

import json
from typing import Final, Literal

QUOTE_LIMIT: Final = 80
"""Characters of a value a message shows before it cuts the rest."""


def quoted(value: object, limit: int = QUOTE_LIMIT, *, style: Literal["python", "json"] = "python") -> str:
    """`value` as a literal, 'fetch-feeds' (or "fetch-feeds" in the json style); past `limit`
    characters cut with an ellipsis and its length: 'aaaa…' (100,000 characters). A value
    that is no string shows as its repr, cut the same way."""
    if not isinstance(value, str):
        return clipped(repr(value), limit)
    literal = json.dumps if style == "json" else repr
    if len(value) <= limit:
        return literal(value)
    head = literal(value[:limit])
    return f"{head[:-1]}…{head[-1]} ({len(value):,} characters)"


def clipped(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` unquoted, cut like quoted() past `limit` characters: for a value a message
    shows bare, such as a hint that repeats a word the user wrote."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
