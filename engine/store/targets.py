"""What --db names: a SQLite file's path or a postgresql:// URL, and what follows from it
(a short name for titles, where run logs go)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from evman.engine.store.postgres import is_url, masked

Target = Path | str
"""A SQLite file's Path, or a PostgreSQL URL (str)."""


def db_target(text: str | Path) -> Target:
    """--db's value as a target: a URL stays text (Path would fold its //)."""
    return str(text) if is_url(text) else Path(text)


def short_name(target: Target) -> str:
    """The file's name, or the PostgreSQL database's name."""
    if is_url(target):
        return unquote(urlsplit(str(target)).path.lstrip("/")) or "postgres"
    return Path(target).name


def shown(target: Target) -> str:
    """The target as messages show it (a URL's password masked)."""
    return masked(str(target)) if is_url(target) else str(target)


def logs_dir(target: Target | None) -> Path:
    """Where an engine writes its runs' output: $EVMAN_LOGS_DIR when set, else `<file>.logs`
    beside a SQLite file, else `<database>.logs` in the working directory (each engine host
    keeps its own)."""
    chosen = os.environ.get("EVMAN_LOGS_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    if target is None:
        return Path("memory.logs")
    if is_url(target):
        return Path.cwd() / f"{short_name(target)}.logs"
    path = Path(target)
    return path.parent / f"{path.name}.logs"
