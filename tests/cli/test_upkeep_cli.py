"""`evman prune`, `evman show` on pruned logs, `evman backup` and a restore, as users run them."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from tests.conftest import load_text
from tests.engine_cli import cli
from tests.outside import found
from tests.retention.history import add_runs, ids

DAY = timedelta(days=1)
DEFS = """
    [defaults]
    timezone = "UTC"
    keep = { runs = "10d", logs = "6h" }
    [[event]]
    name = "hourly"
    run = "echo hello"
"""


def history(tmp_path: Path) -> tuple[Path, Store, list[int]]:
    db = tmp_path / "evman.db"
    store = open_store(db)
    load_text(store, DEFS, tmp_path, datetime.now(UTC))
    start = datetime.now(UTC) - 20 * DAY + timedelta(minutes=30)  # no run within half an hour of a horizon
    made = add_runs(store, tmp_path / "evman.db.logs", "hourly", start, 20 * 24, timedelta(hours=1))
    return db, store, made


def test_prune_dry_run_says_what_prune_then_deletes(tmp_path: Path) -> None:
    db, store, made = history(tmp_path)
    dry = json.loads(cli("prune", "--dry-run", "--json", "--db", str(db)).stdout)
    assert ids(store) == set(made)  # nothing deleted
    assert all(os.path.exists(found(store.run(r))["log_path"]) for r in made)
    assert dry["events"]["hourly"]["runs"] == dry["runs"] and 10 * 24 - 2 <= dry["runs"] <= 10 * 24 + 2
    assert 20 * 24 - 7 - 2 <= dry["logs"] <= 20 * 24 - 7 + 2  # all but the last 6 hours' and the last success's
    text = cli("prune", "--dry-run", "--db", str(db)).stdout
    assert "would delete" in text and "hourly" in text
    done = cli("prune", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    did = json.loads(done.stdout)
    assert (did["runs"], did["logs"]) == (dry["runs"], dry["logs"])
    assert len(ids(store)) == len(made) - did["runs"]
    again = json.loads(cli("prune", "--dry-run", "--json", "--db", str(db)).stdout)
    assert (again["runs"], again["logs"]) == (0, 0)


def test_show_says_a_log_was_pruned(tmp_path: Path) -> None:
    db, store, made = history(tmp_path)
    assert cli("prune", "--db", str(db)).returncode == 0
    shown = json.loads(cli("show", "hourly", "--json", "--db", str(db)).stdout)
    pruned = [r for r in shown["runs"] if r["log_pruned_at"]]
    assert pruned and all(r["output_tail"] == "done" for r in pruned)
    assert all(not os.path.exists(r["log_path"]) for r in pruned)
    kept = [r for r in shown["runs"] if not r["log_pruned_at"]]
    assert kept and all(os.path.exists(r["log_path"]) for r in kept)
    text = cli("show", "hourly", "--db", str(db)).stdout
    assert f"pruned (keep.logs) for run(s) {', '.join(str(r['id']) for r in pruned)};" in text


def test_backup_while_the_engine_runs_then_restore_and_run(tmp_path: Path) -> None:
    db, store, made = history(tmp_path)
    engine = Engine(open_store(db), tick_s=0.01, logs_dir=tmp_path / "evman.db.logs")
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    writer_done = threading.Event()

    def keep_asking() -> None:  # the engine writes all the while: answers and runs
        other = open_store(db)
        while not writer_done.is_set():
            other.add_request("trigger", "hourly", requested_by="test")
            time.sleep(0.01)
        other.close()

    asker = threading.Thread(target=keep_asking, daemon=True)
    thread.start()
    asker.start()
    try:
        time.sleep(0.3)
        done = cli("backup", str(tmp_path / "copy.db"), "--json", "--db", str(db))
        assert done.returncode == 0, done.stderr
        copied = json.loads(done.stdout)
        assert copied["rows"]["runs"] >= len(made) and copied["rows"]["requests"] > 0
        assert cli("backup", str(tmp_path / "copy.db"), "--db", str(db)).returncode == 1  # no overwrite
    finally:
        writer_done.set()
        asker.join(5)
        engine.stop()
        thread.join(20)
        engine.executors.shutdown(wait_s=5)
    assert oct((tmp_path / "copy.db").stat().st_mode & 0o777) == "0o600"
    restored = tmp_path / "restored" / "evman.db"
    restored.parent.mkdir()
    shutil.copyfile(tmp_path / "copy.db", restored)
    restored.chmod(0o600)
    again = open_store(restored)
    clock = FakeClock(datetime.now(UTC))
    restored_at = clock.now().isoformat()
    revived = Engine(again, clock=clock, logs_dir=restored.parent / "logs", pid=os.getpid())
    revived.start()  # takes over what the copy holds as running or waiting
    try:
        revived.settle(clock.now(), timeout_s=30)  # what the copy held as running ends first
        asked = open_store(restored).add_request("trigger", "hourly", requested_by="after restore")  # another program
        revived.settle(clock.now(), timeout_s=30)
    finally:
        revived.executors.shutdown(wait_s=5)
    assert found(again.request(asked))["handled_at"] is not None
    assert again.active_runs() == []
    ran = [r for r in again.runs_of("hourly", limit=50) if (r["started_at"] or "") >= restored_at]
    assert any(r["state"] == "succeeded" and r["output_tail"].strip() == "hello" for r in ran), (
        restored_at,
        [(r["id"], r["state"], r["output_tail"], r["reason"]) for r in ran],
        again.request(asked),
    )
