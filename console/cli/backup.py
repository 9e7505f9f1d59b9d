"""`evman backup FILE`: a consistent copy of a SQLite database while its engine runs, through
SQLite's online backup API (one read snapshot: in WAL mode the engine goes on writing), written
beside FILE first and renamed into place, then checked. PostgreSQL: pg_dump."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Option = Callable[[Callable[..., None]], Callable[..., None]]
"""A click option decorator (main.py's --json, --db)."""

PG_HINT = (
    "{url} is PostgreSQL: back it up with its own tools, e.g. "
    "pg_dump --format=custom --file=evman.dump '{url}' (restore with pg_restore --dbname=...)"
)


class BackupError(Exception):
    """Why no copy was made (said on stderr, exit 1)."""


def backup(store: Any, target: Path, *, force: bool) -> dict[str, Any]:
    """Copy `store`'s database to `target`; what was copied (bytes, tables' rows, seconds)."""
    if store.several_engines or store.path is None:
        raise BackupError(PG_HINT.format(url=store.url))
    target = target.expanduser()
    if target.resolve() == Path(store.path).resolve():
        raise BackupError(f"{target} is the database itself; choose another file.")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; choose another name, or add --force to replace it.")
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    _copy(store.conn, partial)
    counts = _check(partial)
    os.replace(partial, target)
    return {
        "file": str(target),
        "bytes": target.stat().st_size,
        "seconds": round(time.monotonic() - started, 3),
        "rows": counts,
    }


def _copy(source: sqlite3.Connection, partial: Path) -> None:
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)  # private, like the database
    os.close(fd)
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest, pages=0)  # every page in one step: one consistent snapshot
        dest.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    finally:
        dest.close()


def _check(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the copy at {path} failed its check ({verdict}); it was left there")
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("events", "runs", "alerts", "requests")
        }
    finally:
        conn.close()


def render(data: dict[str, Any]) -> str:
    rows = ", ".join(f"{n:,} {table}" for table, n in data["rows"].items())
    return f"backed up to {data['file']} ({data['bytes'] / 1e6:.1f} MB in {data['seconds']:.2f} s): {rows}"


def register(main: click.Group, open_store: Any, emit: Any, fail: Any, json_option: Option, db_option: Option) -> None:
    @main.command("backup", context_settings={"help_option_names": ["-h", "--help"]})
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True, help="Replace FILE if it exists.")
    @json_option
    @db_option
    def backup_command(file: Path, force: bool, as_json: bool) -> None:
        """Copy the database to FILE, consistently, while the engine runs (SQLite's online
        backup). Restore: stop the engine, put the copy in the database's place, start it.

        Example: evman backup /var/backups/evman-$(date +%F).db
        """
        try:
            emit(backup(open_store(readonly=True), file, force=force), as_json, render)
        except BackupError as exc:
            fail(str(exc))
