"""What --db names: a SQLite file's path or a postgresql:// URL, and what follows from it
(a short name for titles, where run logs go)."""

from __future__ import annotations

import os
from pathlib import Path

Target = Path | str
"""A SQLite file's Path, or a PostgreSQL URL (str)."""
DEFAULT_DB = "evman.db"
"""The database when neither --db nor $EVMAN_DB names one: evman.db in the working directory."""


def is_url(target: object) -> bool:
    """Whether --db names a PostgreSQL database (conninfo.is_url); text with neither `://` nor `=`
    is a file's path, told without importing the libpq string reader."""
    text = str(target)
    if "://" not in text and "=" not in text:
        return False
    from evman.engine.store import conninfo

    return conninfo.is_url(text)


def named_target(given: str | None) -> Target:
    """The database a command line names: --db's value (`given`), else $EVMAN_DB, else ./evman.db."""
    return db_target(given or os.environ.get("EVMAN_DB") or DEFAULT_DB)


def db_target(text: str | Path) -> Target:
    """--db's value as a target: a URL stays text (Path would fold its //)."""
    return str(text) if is_url(text) else Path(text)


def short_name(target: Target) -> str:
    """The file's name, or the PostgreSQL database's name."""
    if is_url(target):
        from evman.engine.store.conninfo import dbname

        return dbname(str(target)) or "postgres"
    return Path(target).name


def shown(target: Target) -> str:
    """The target as messages show it (a URL's password masked)."""
    if is_url(target):
        from evman.engine.store.conninfo import masked

        return masked(str(target))
    return str(target)


def logs_dir(target: Target | None, fleet_id: str | None = None) -> Path:
    """Where an engine writes its runs' output: $EVMAN_LOGS_DIR when set, else `<file>.logs`
    beside a SQLite file, else, for PostgreSQL, one folder per database on each host that every
    engine there agrees on whatever its working directory: `<database>-<fleet id>.logs` in
    $XDG_STATE_HOME/evman (~/.local/state/evman). Each run records the file its command wrote
    (runs.log_path), which is where everyone reads it."""
    chosen = os.environ.get("EVMAN_LOGS_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    if target is None:
        return Path("memory.logs")
    if is_url(target):
        name = short_name(target) + (f"-{fleet_id}" if fleet_id else "")
        return state_home() / f"{name}.logs"
    path = Path(target)
    return path.parent / f"{path.name}.logs"


def state_home() -> Path:
    """evman's folder for the state of this user on this host: $XDG_STATE_HOME/evman, else
    ~/.local/state/evman."""
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".local" / "state") / "evman"
