"""Where an event runs and what becomes of it when its engine dies: hosts, tags, on_lost."""

from __future__ import annotations

import re
from typing import Any, Final

from evman.engine.definitions.table import Table
from evman.engine.model import OnLost
from evman.engine.quoting import quoted

HOST_PATTERN: Final = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
HOST_MAX_LENGTH: Final = 253
TAG_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
TAG_MAX_LENGTH: Final = 64


def read_placement(table: Table) -> dict[str, Any]:
    return {
        "hosts": _read_names(
            table, "hosts", HOST_PATTERN, HOST_MAX_LENGTH, 'a host name such as "web1" or "web1.example.com"'
        ),
        "tags": _read_names(
            table,
            "tags",
            TAG_PATTERN,
            TAG_MAX_LENGTH,
            "a tag such as \"gpu\": letters, digits, '.', '_', ':' and '-', starting with a letter or digit",
        ),
        "on_lost": table.choice("on_lost", OnLost),
    }


def _read_names(table: Table, key: str, pattern: re.Pattern[str], most: int, expected: str) -> tuple[str, ...] | None:
    """An array of distinct names, each matching `pattern`; None when any is wrong."""
    names = table.strings(key)
    if names is None:
        return None
    wrong = False
    for index, name in enumerate(names):
        if pattern.fullmatch(name) is None or len(name) > most:
            table.error(
                f"{key}[{index}]", f"{quoted(name)} is not usable; expected {expected}, at most {most} characters"
            )
            wrong = True
        elif name in names[:index]:
            table.error(f"{key}[{index}]", f"{quoted(name)} is listed twice; expected each once")
            wrong = True
    return None if wrong else names
