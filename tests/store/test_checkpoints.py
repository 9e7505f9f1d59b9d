"""WAL checkpoints off the engine's commits: a commit that takes the log past 1,000 pages does
not copy it into the database file itself (two fsyncs inside a tick); the background thread does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from evman.engine.store.checkpoints import SAFETY_NET_PAGES

PAGES = 1500
"""More than SQLite's default auto-checkpoint (1,000 pages), far fewer than the safety net."""


def _write_pages(store: Store) -> None:
    """One transaction of about PAGES pages of 4 KiB (a blob that fills a page each)."""
    store.apply_statements(
        [
            ("CREATE TABLE IF NOT EXISTS scratch (x BLOB)", [()]),
            ("INSERT INTO scratch (x) VALUES (randomblob(4000))", [()] * PAGES),
        ]
    )


def _grew_within(path: Path, size: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.stat().st_size > size:
            return True
        time.sleep(0.01)
    return False


def test_without_the_thread_the_commit_itself_checkpoints(tmp_path: Path) -> None:
    """What the thread takes away: SQLite's own auto-checkpoint copies the log into the file
    inside the COMMIT that passed 1,000 pages."""
    path = tmp_path / "plain.db"
    store = open_store(path)
    try:
        before = path.stat().st_size
        _write_pages(store)
        assert path.stat().st_size > before + (PAGES // 2) * 4096  # copied by the commit itself
    finally:
        store.close()


def test_with_the_thread_the_commit_leaves_the_log_to_it(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    store = open_store(path)
    try:
        store.checkpoint_in_background(delay_s=60.0)  # the thread waits: what the commit did shows
        before = path.stat().st_size
        _write_pages(store)
        assert path.stat().st_size == before  # the pages are in the log only
        assert store.rows("SELECT count(*) AS n FROM scratch")[0]["n"] == PAGES
    finally:
        store.close()


def test_the_thread_checkpoints_soon_after_a_commit(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    store = open_store(path)
    try:
        store.checkpoint_in_background(delay_s=0.01)
        before = path.stat().st_size
        _write_pages(store)
        assert _grew_within(path, before + (PAGES // 2) * 4096, timeout_s=10)
    finally:
        store.close()


def test_the_engine_leaves_its_checkpoints_to_the_thread(tmp_path: Path) -> None:
    store = open_store(tmp_path / "evman.db")
    engine = Engine(store, clock=FakeClock(datetime(2026, 1, 5, tzinfo=UTC)), logs_dir=tmp_path / "logs")
    try:
        engine.start()
        auto = store.rows("PRAGMA wal_autocheckpoint")[0][0]
        assert auto == SAFETY_NET_PAGES
    finally:
        engine.executors.shutdown(wait_s=0)
        store.close()
