"""Writers in one process queue on the file's write gate (engine/store/sqlite.py, write_gate): the
next transaction begins when the last one commits, not after SQLite's busy handler wakes from a
sleep; the wait is bounded by the busy timeout, with the store's own words when it runs out.
Incremental vacuum gives back as many pages as it is asked for."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from evman.engine.store import StoreError
from evman.engine.store import open_store as open_any
from evman.engine.store.sqlite import write_gate
from evman.engine.store.stores import SqliteStore


def open_store(path: Path, **options: bool) -> SqliteStore:
    store = open_any(path, **options)
    assert isinstance(store, SqliteStore)
    return store


def test_every_connection_of_the_process_to_one_file_shares_its_gate(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    first = open_store(db)
    os.symlink(db, tmp_path / "link.db")
    second = open_store(tmp_path / "link.db")
    other = open_store(tmp_path / "b.db")
    try:
        assert write_gate(db) is write_gate(tmp_path / "link.db")
        assert write_gate(db) is not write_gate(tmp_path / "b.db")
        assert open_store(db, readonly=True)._gate is None  # a reader never writes
    finally:
        for store in (first, second, other):
            store.close()


def test_a_second_writer_begins_when_the_first_commits(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    first, second = open_store(db), open_store(db)
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def hold() -> None:
        with first.transaction():
            first.execute("INSERT INTO settings (key, value) VALUES ('gate', 'first')")
            inside.set()
            release.wait(5)
            order.append("first commits")

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(5)
        writer = threading.Thread(target=lambda: _write(second, order))
        writer.start()
        writer.join(0.2)
        assert writer.is_alive() and order == []  # waiting at the gate, not failing
        release.set()
        writer.join(5)
        assert order == ["first commits", "second wrote"]
        assert second.value("SELECT value FROM settings WHERE key = 'gate'") == "second"
    finally:
        release.set()
        holder.join(5)
        first.close()
        second.close()


def _write(store: SqliteStore, order: list[str]) -> None:
    with store.transaction():
        store.execute("UPDATE settings SET value = 'second' WHERE key = 'gate'")
    order.append("second wrote")


def test_the_gate_waits_no_longer_than_the_busy_timeout_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    first, second = open_store(db), open_store(db)
    second.busy_timeout_ms = 50
    try:
        with first.transaction():
            with pytest.raises(StoreError, match="stayed locked by another writer"):
                with second.transaction():
                    pass  # pragma: no cover - never reached
        with second.transaction():  # the gate was let go: the next write goes through
            second.execute("INSERT INTO settings (key, value) VALUES ('after', 'yes')")
        assert first.value("SELECT value FROM settings WHERE key = 'after'") == "yes"
    finally:
        first.close()
        second.close()


def test_incremental_vacuum_gives_back_the_pages_asked_for(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.db")
    try:
        with store.transaction():
            store.execute_many(
                "INSERT INTO settings (key, value) VALUES (?, ?)", [(f"k{i}", "x" * 400) for i in range(5000)]
            )
        with store.transaction():
            store.execute("DELETE FROM settings WHERE key LIKE 'k%'")
        free, _pages, can = store.free_pages()
        assert can and free > 300
        store.give_back_pages(200)
        assert store.free_pages()[0] == free - 200  # each step of the pragma is one page: all 200 steps ran
    finally:
        store.close()
