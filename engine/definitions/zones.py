"""Time zones: the machine's own, and checking the names a file gives."""

from __future__ import annotations

import difflib
import functools
import os
import zoneinfo
from pathlib import Path

from evman.engine.definitions.table import Table
from evman.engine.quoting import quoted


def machine_timezone() -> str:
    """This machine's zone name: $TZ if it names a zone, else /etc/localtime's link, else
    /etc/timezone, else "UTC"."""
    for candidate in (_zone_from_env(), _zone_from_localtime(), _zone_from_etc_timezone()):
        if candidate and zone_problem(candidate) is None:
            return candidate
    return "UTC"


def _zone_from_env() -> str | None:
    value = os.environ.get("TZ", "").strip().removeprefix(":")
    return value or None


def _zone_from_localtime() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def _zone_from_etc_timezone() -> str | None:
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_problem(name: str) -> str | None:
    """None when `name` is a zoneinfo name, else what is wrong with it."""
    if name in _zone_names():
        try:
            zoneinfo.ZoneInfo(name)
            return None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    close = difflib.get_close_matches(name, sorted(_zone_names()), n=1)
    hint = f"did you mean {quoted(close[0])}?" if close else 'expected a zoneinfo name such as "Europe/London" or "UTC"'
    return f"unknown timezone {quoted(name)}; {hint}"


def read_timezone(table: Table) -> str | None:
    name = table.string("timezone")
    if name is None:
        return None
    problem = zone_problem(name)
    if problem is not None:
        table.error("timezone", problem)
        return None
    return name
