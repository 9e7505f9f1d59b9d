"""evman as another program sees it: the command as a process, the database through plain
sqlite3, processes through the kernel. Shared by the store, running, stage, CLI and drill tests."""

from __future__ import annotations

import ctypes
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from evman.engine.running.procs import is_zombie

ROOT = Path(__file__).resolve().parents[1]
EVMAN_SCRIPT = ROOT / ".venv" / "bin" / "evman"
PR_SET_CHILD_SUBREAPER = 36
T = TypeVar("T")

__all__ = [
    "ROOT",
    "EVMAN_SCRIPT",
    "evman_argv",
    "connect",
    "rows",
    "wait_until",
    "found",
    "kill_group",
    "is_zombie",
    "set_child_subreaper",
]


def evman_argv(*args: str) -> list[str]:
    """The installed `evman` script, or the same entry point through this interpreter."""
    if EVMAN_SCRIPT.exists():
        return [str(EVMAN_SCRIPT), *args]
    return [sys.executable, "-c", "from evman.console.start import main; main()", *args]


def connect(db: Path | str, timeout: float = 10.0) -> Any:
    """A plain connection, as another program would open it: sqlite3 for a file, psycopg for a
    postgresql:// URL (statements written with `?` either way; rows read by column name)."""
    if str(db).startswith("postgresql://"):
        return PgOutside(str(db))
    conn = sqlite3.connect(db, timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


class PgOutside:
    """psycopg, autocommit, `?` placeholders: the same statements as with sqlite3."""

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))

    def close(self) -> None:
        self.conn.close()


def found(value: T | None, what: str = "row") -> T:
    """`value`, which the test expects to be there: a plain failure (not a TypeError later) if not."""
    assert value is not None, f"no such {what}"
    return value


def rows(db: Path | str, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Read with the standard library only, as any other program could."""
    conn = connect(db)
    try:
        return [dict(r) for r in conn.execute(query, params)]
    finally:
        conn.close()


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def kill_group(pgid: int | None) -> None:
    """SIGKILL a process group the test started; gone already is fine."""
    if not pgid:
        return
    try:
        os.killpg(int(pgid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def set_child_subreaper(on: bool) -> None:
    """Make this process adopt orphaned descendants, as a reaping init would.

    This sandbox's PID 1 never reaps orphans, so a killed command's grandchildren would stay
    zombies for ever; as subreaper the test can reap them itself."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
