"""Helpers for tests that run evman as users do: real files, real processes, plain sqlite3 for outside views."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.store import StoreError, open_store
from tests.outside import (
    EVMAN_SCRIPT,
    ROOT,
    connect,
    evman_argv,
    is_zombie,
    kill_group,
    rows,
    set_child_subreaper,
    wait_until,
)

__all__ = [  # tests.outside's helpers, re-exported, and this module's own
    "EVMAN_SCRIPT",
    "ROOT",
    "connect",
    "evman_argv",
    "is_zombie",
    "kill_group",
    "rows",
    "set_child_subreaper",
    "wait_until",
    "SETTLE_S",
    "cli",
    "start_engine_process",
    "log_of",
    "load_defs",
    "runs",
    "insert_request",
    "tick_until",
    "group_gone",
    "pids_in_group",
    "reap",
    "kill_running_commands",
]

SETTLE_S = 60.0
"""Real seconds a settle may wait for child processes: generous, others load this machine too."""
T = TypeVar("T")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `evman ARGS` as a real process and return what it did."""
    return subprocess.run(
        evman_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
    )


def start_engine_process(
    db: Path, *extra: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`evman --no-ui --db DB` as a real background process; output goes to `log`."""
    out = open(log or log_of(db), "ab")
    if not isinstance(db, Path):  # run logs beside the engine's log, not in the checkout
        env = {"EVMAN_LOGS_DIR": str(log_of(db).with_suffix(".logs")), **(env or {})}
    return subprocess.Popen(
        evman_argv("--no-ui", "--db", str(db), *extra),
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def log_of(db: Path | str) -> Path:
    """Where start_engine_process writes an engine's output: beside a file, or (PostgreSQL)
    in the temporary folder, named after the database."""
    if isinstance(db, Path):
        return db.with_suffix(".engine.log")
    from evman.engine.store.targets import short_name

    return Path(tempfile.gettempdir()) / f"{short_name(db)}.engine.log"


def load_defs(db: Path, text: str, base_dir: Path, now: datetime, *, prune: bool = False) -> dict[str, list[str]]:
    """Load definitions through a connection of its own, as `evman load` would."""
    store = open_store(db)
    try:
        defs = parse_definitions(
            textwrap.dedent(text),
            source=str(base_dir / "defs.toml"),
            base_dir=base_dir,
            known_events=store.event_names(),
        )
        return catalog.save(store, defs, now=now, prune=prune)
    finally:
        store.close()


def runs(db: Path, event: str | None = None) -> list[dict[str, Any]]:
    if event is None:
        return rows(db, "SELECT * FROM runs ORDER BY id")
    return rows(db, "SELECT * FROM runs WHERE event = ? ORDER BY id", (event,))


def insert_request(
    db: Path,
    verb: str,
    target: str,
    *,
    args: dict[str, Any] | None = None,
    requested_by: str = "pytest",
    dedupe_key: str | None = None,
) -> int:
    """A request row written with plain sqlite3, as a program without evman would."""
    conn = connect(db)
    try:
        cur = conn.execute(
            "INSERT INTO requests (verb, target, args, requested_by, dedupe_key) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (verb, target, None if args is None else json.dumps(args), requested_by, dedupe_key),
        )
        return int(cur.fetchone()["id"])
    finally:
        conn.close()


def tick_until(
    engine: Engine,
    check: Callable[[], T | None],
    *,
    now: datetime | None = None,
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """Tick at `now` (the fake clock does not move) until `check` holds."""

    def step() -> T | None:
        engine.tick(now)
        return check()

    return wait_until(step, timeout=timeout, interval=0.02, what=what)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def pids_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def reap(pids: Sequence[int]) -> None:
    """waitpid the given pids if they are our (adopted) children; ignore the others."""
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.fixture(autouse=True)
def kill_running_commands(db_path: Path) -> Iterator[None]:
    """At teardown, SIGKILL the process group of every run still recorded as running.

    Test modules import it (a conftest.py here would shadow tests/conftest.py for the
    modules that `from conftest import ...`)."""
    yield
    if isinstance(db_path, Path) and not db_path.exists():
        return
    try:
        left = rows(db_path, "SELECT pid FROM runs WHERE state = 'running' AND pid IS NOT NULL")
    except (
        sqlite3.DatabaseError,
        StoreError,
        psycopg.Error,
    ):  # some tests leave a file that is no database, on purpose
        return
    for row in left:
        kill_group(int(row["pid"]))
