"""One [[event]] table: its name and surroundings, with the sections read by their own modules."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path
from typing import Any, Final

from evman.engine.definitions.action import ACTION_KEYS, read_action, read_string_table
from evman.engine.definitions.links import read_links
from evman.engine.definitions.outputs import read_outputs
from evman.engine.definitions.placement import read_placement
from evman.engine.definitions.table import Context, Table, without_none
from evman.engine.definitions.timing import read_timing
from evman.engine.model import EventSpec
from evman.engine.quoting import quoted

NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
NAME_MAX_LENGTH: Final = 64
EVENT_KEYS: Final = (
    "name",
    *ACTION_KEYS,
    "cwd",
    "env",
    "schedule",
    "timezone",
    "requires",
    "window",
    "late_after",
    "runtime",
    "outputs",
    "on_success",
    "on_failure",
    "driver",
    "concurrency",
    "misfire",
    "user",
    "description",
    "stdin",
    "timeout",
    "deadline",
    "expect",
    "on_lost",
    "hosts",
    "tags",
    "calendar",
    "on_holiday",
    "on_blackout",
)


def read_event(table: Table, context: Context) -> EventSpec | None:
    """The spec, or None when the table has problems (noted in table.problems)."""
    before = len(table.problems.lines)
    table.check_keys(EVENT_KEYS)
    values: dict[str, Any] = {
        "name": _read_name(table),
        **read_action(table),
        **_read_surroundings(table, context),
        **read_timing(table, context),
        **read_links(table, context),
        **read_placement(table),
        "outputs": read_outputs(table),
    }
    if len(table.problems.lines) > before:
        return None
    return EventSpec(**without_none(values))


def _read_name(table: Table) -> str | None:
    if "name" not in table.data:
        table.error("name", 'missing; expected a name such as "fetch-feeds"')
        return None
    name = table.string("name")
    if name is not None and (NAME_PATTERN.fullmatch(name) is None or len(name) > NAME_MAX_LENGTH):
        table.error(
            "name",
            f"{quoted(name)} is not a valid event name; expected lowercase letters, digits, "
            f"'.', '_' and '-', starting with a letter or digit, at most {NAME_MAX_LENGTH} characters",
        )
        return None
    return name


def _read_surroundings(table: Table, context: Context) -> dict[str, Any]:
    return {
        "cwd": _read_cwd(table, context.base_dir),
        "env": read_string_table(table, "env"),
        "user": _read_user(table),
        "description": table.string("description"),
        "stdin": table.string("stdin"),
    }


def _read_cwd(table: Table, base_dir: Path) -> str | None:
    value = table.string("cwd", blank_ok=False)
    if value is None and "cwd" in table.data:
        return None
    try:
        return os.path.normpath(base_dir / Path(value or ".").expanduser())
    except RuntimeError:  # "~someone" for a user this machine does not have
        table.error("cwd", f"{quoted(value)}: no such user's home; expected a path, or ~ for your own home")
        return None


def _read_user(table: Table) -> str | None:
    user = table.string("user", blank_ok=False)
    if user is None:
        return None
    euid = os.geteuid()
    if euid == 0:
        try:
            pwd.getpwnam(user)
        except KeyError:
            table.error("user", f"no user {quoted(user)} on this machine; expected an existing user name")
            return None
    elif user != _user_name(euid):
        table.error(
            "user",
            f"evman runs commands as another user only when it runs as root; "
            f"expected {quoted(_user_name(euid))} or no user key",
        )
        return None
    return user


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
