"""Whom a command runs as: the event's `user`, checked on the engine that starts it (the
definitions may have been loaded on another host, which warns only)."""

from __future__ import annotations

import os
import pwd


class SpawnError(RuntimeError):
    """A run that cannot start here, in words (it fails with this reason)."""


def user_ids(user: str | None, host: str) -> tuple[int, int] | None:
    """(uid, gid) to run as, None for this engine's own user; SpawnError when this host has no
    such user, or this engine may not switch to it (the definitions were loaded elsewhere)."""
    if user is None:
        return None
    euid = os.geteuid()
    if euid != 0:
        me = _user_name(euid)
        if user == me:
            return None
        raise SpawnError(
            f"evman runs commands as another user only when it runs as root; this engine runs as "
            f"{me!r} on {host}, the event asks for user {user!r}"
        )
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SpawnError(
            f"user {user!r} does not exist on {host}; create it there, or place the event on a "
            "host that has it (hosts = [...])"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
