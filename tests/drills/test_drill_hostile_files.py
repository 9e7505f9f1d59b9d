"""Hostile input, the files: a file that is no SQLite database given as --db, an SQLite file
of another program, a database from a newer evman, a read-only database file, and a disk that
fills up under a running engine. Each is refused (or borne) with one clear line, never a
traceback, and the file is left as it was."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from evman.engine.clock import iso
from tests.drills.common import cli, evman

DEFS = """
[defaults]
timezone = "UTC"

[[event]]
name = "a"
run = "true"
schedule = "every 1 minutes"
"""

CRONTAB = "* * * * * echo hi\n"

READS = (
    ("list",),
    ("list", "--json"),
    ("show", "a", "--json"),
    ("history", "--json"),
    ("alerts", "--json"),
    ("export",),
    ("next", "a"),
)
WRITES = (
    ("trigger", "a"),
    ("hold", "a"),
    ("ack", "a"),
    ("load", "{defs}"),
    ("import-crontab", "{crontab}"),
    ("--no-ui",),
)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    defs, crontab = tmp_path / "defs.toml", tmp_path / "jobs.cron"
    defs.write_text(DEFS)
    crontab.write_text(CRONTAB)
    return defs, crontab


def _argv(verb: tuple[str, ...], db: Path, defs: Path, crontab: Path) -> list[str]:
    return [a.format(defs=defs, crontab=crontab) for a in verb] + ["--db", str(db)]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file in `folder` and its content hash: what 'left untouched' means. SQLite's
    -shm index may appear beside a WAL database that is read; a -wal must stay empty."""
    for wal in folder.glob("*-wal"):
        assert wal.stat().st_size == 0, f"{wal} holds writes"
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _refused(argv: list[str], *words: str) -> str:
    """`evman ARGV` exits 1 with one line naming the problem. `--no-ui` runs as a real process
    (it sets up logging and signals); the other verbs run in this process, for speed."""
    done = evman(*argv, timeout=30) if "--no-ui" in argv or "list" in argv else cli(*argv)
    assert done.returncode == 1, (argv, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    line = done.stderr.strip()
    assert line.count("\n") == 0, f"more than one line: {line!r}"
    for word in words:
        assert word in line, (argv, line)
    return line


@pytest.mark.parametrize(
    "content",
    [
        b"hello, I am a text file\n" * 10,
        bytes(range(256)) * 20,
        b"SQLite format 3\x00" + b"\xff" * 200,  # the right magic, then garbage
    ],
    ids=["text", "binary", "bad-sqlite-header"],
)
def test_a_file_that_is_no_database_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    defs, crontab = _files(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    db = data / "not-a-db.db"
    db.write_bytes(content)
    db.chmod(0o600)
    before = _snapshot(data)
    for verb in READS + WRITES:
        _refused(_argv(verb, db, defs, crontab), "not an evman database", str(db))
    assert _snapshot(data) == before


def test_an_sqlite_file_of_another_program_is_refused_and_left_untouched(tmp_path: Path) -> None:
    defs, crontab = _files(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    db = data / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    db.chmod(0o600)
    before = _snapshot(data)
    for verb in (("list",), ("load", "{defs}"), ("trigger", "a"), ("--no-ui",)):
        _refused(_argv(verb, db, defs, crontab), "another program", "untouched")
    assert _snapshot(data) == before


def test_a_database_from_a_newer_evman_is_refused_and_left_untouched(tmp_path: Path) -> None:
    defs, crontab = _files(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    db = data / "newer.db"
    assert evman("load", str(defs), "--db", str(db)).returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _snapshot(data)
    for verb in READS + WRITES:
        _refused(_argv(verb, db, defs, crontab), "newer evman", "schema 99", "untouched")
    assert _snapshot(data) == before


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A database file this process cannot write: mode 0400 for a normal user; for root, who
    writes anything, the immutable attribute (chattr +i), or a skip where that is not allowed."""
    defs, _ = _files(tmp_path)
    db = tmp_path / "ro.db"
    assert evman("load", str(defs), "--db", str(db)).returncode == 0
    assert evman("trigger", "a", "--db", str(db)).returncode == 0  # some history to read
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if os.geteuid() != 0:
        db.chmod(0o400)
        yield db
        db.chmod(0o600)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no file is read-only to root")
    try:
        yield db
    finally:
        subprocess.run([chattr, "-i", str(db)], check=True)


def test_a_read_only_database_reads_and_says_read_only_on_writes(tmp_path: Path, read_only: Path) -> None:
    defs, crontab = tmp_path / "defs.toml", tmp_path / "jobs.cron"
    before = hashlib.sha256(read_only.read_bytes()).hexdigest()
    for verb in READS:
        done = cli(*_argv(verb, read_only, defs, crontab))
        assert done.returncode == 0, (verb, done.stderr)
        assert "Traceback" not in done.stderr
    for verb in WRITES:
        _refused(_argv(verb, read_only, defs, crontab), "read-only")
    assert hashlib.sha256(read_only.read_bytes()).hexdigest() == before


# -- a full disk under a running engine ------------------------------------------------------------

FULL_DEFS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "tick"
    run = "echo {payload}"
    schedule = "every 1 minutes"
    concurrency = "queue"
"""


def _runs(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, event, state, scheduled_for, exit_code, output_tail FROM runs ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_a_full_disk_is_borne_said_and_recovered_from(
    engine_factory, store, clock, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database cannot grow (PRAGMA max_page_count): the engine keeps ticking, logs that the
    disk is full, keeps what it recorded before, and records what happened meanwhile once space
    returns."""
    engine = engine_factory(FULL_DEFS.format(payload="x" * 3000), tick_s=0.02)
    thread = threading.Thread(target=engine.run, name="engine-under-test", daemon=True)
    thread.start()

    def minutes(n: int) -> None:
        for _ in range(n):
            clock.advance(timedelta(minutes=1))
            engine.wake()
            time.sleep(0.25)

    try:
        minutes(3)
        _wait(lambda: len([r for r in _runs(db_path) if r[2] == "succeeded"]) >= 3, "three runs recorded")
        before = _runs(db_path)
        pages = int(store.conn.execute("PRAGMA page_count").fetchone()[0])
        with caplog.at_level(logging.ERROR, logger="evman.engine"):
            store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the engine's own connection
            minutes(6)
            _wait(lambda: any("full" in r.getMessage() for r in caplog.records), "the engine to say the disk is full")
            assert thread.is_alive(), "the engine thread died of a full disk"
            said = [r.getMessage() for r in caplog.records if "full" in r.getMessage()]
            assert "Free space; nothing was lost" in said[0], said[0]
            assert not any(r.exc_info for r in caplog.records), "a full disk is no bug: no traceback"
            # about one line a tick (6 x 0.25 s at a 20 ms tick): it says so, it does not spin
            assert len(said) < 300, f"{len(said)} log lines in 1.5 s: the engine spins on a full disk"
            during = _runs(db_path)
            assert during[: len(before)] == before, "a full disk lost earlier state"
        outage_ended = clock.now()
        store.conn.execute("PRAGMA max_page_count = 1073741823")  # space returns
        minutes(2)
        _wait(
            lambda: any(r[2] == "succeeded" and r[3] > iso(outage_ended) for r in _runs(db_path)),
            "runs after the outage to be recorded",
        )
        after = _runs(db_path)
        assert after[: len(before)] == before, "earlier state changed"
        scheduled = [r[3] for r in after]
        assert len(scheduled) == len(set(scheduled)), "an occurrence was recorded twice"
        # the run in flight when the disk filled is recorded; the occurrences the engine could
        # not record are folded by the misfire policy (once) into one catch-up run
        new = after[len(before) :]
        assert new and all(r[2] in ("succeeded", "waiting", "running") for r in new), new
        catch_up = store.conn.execute("SELECT count(*) FROM runs WHERE triggered_by LIKE 'catch-up%'").fetchone()[0]
        assert catch_up >= 1
        assert thread.is_alive()
    finally:
        engine.stop()
        thread.join(10)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _wait(check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
