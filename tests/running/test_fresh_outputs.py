"""`fresh = true` against real child processes and the real file-system clock.

File times come from the kernel's coarse clock (one tick, 4 ms here, behind the fine one),
so a file written just after a run started can carry an mtime before its started_at. A
brand-new file must pass (issue 13, item 1); a file older than the run must still fail."""

from __future__ import annotations

import os
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from evman.engine.clock import SystemClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.model import OutputCheck
from evman.engine.running.output_checks import FS_TICK_S, first_failure, verify_outputs
from evman.engine.store import Store, open_store

FRESH = (OutputCheck(path="out.json", fresh=True),)

TRIGGERS = 60

WRITER = """
    [[event]]
    name = "writer-{i}"
    shell = "echo '{{\\"items\\": [1]}}' > out-{i}.json"
    outputs = [ {{ path = "out-{i}.json", fresh = true, json = true }} ]
"""


def _trigger(store: Store, names: list[str]) -> None:
    """As another program asks: the engine reads requests committed by other connections."""
    assert store.path is not None
    other = open_store(store.path)
    try:
        for name in names:
            other.add_request("trigger", name, requested_by="test")
    finally:
        other.close()


def _engine(store: Store, tmp_path: Path, text: str) -> Engine:
    defs = parse_definitions(
        '[defaults]\ntimezone = "UTC"\n' + textwrap.dedent(text), source=str(tmp_path / "defs.toml"), base_dir=tmp_path
    )
    catalog.save(store, defs, now=SystemClock().now())
    engine = Engine(store, clock=SystemClock(), logs_dir=tmp_path / "logs")
    engine.start()
    return engine


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _brand_new(tmp_path: Path) -> os.stat_result:
    out = tmp_path / "out.json"
    out.unlink(missing_ok=True)
    out.write_text('{"items": [1]}')
    return out.stat()


def test_a_file_stamped_within_a_kernel_tick_before_started_at_is_fresh(tmp_path: Path) -> None:
    """The issue's case: modified 52.268660, started_at 52.269827 (the fine clock read before
    the spawn, the file stamped from the coarse one). Up to one tick of slack, no more."""
    st = _brand_new(tmp_path)
    for behind_s in (0.0012, FS_TICK_S * 0.9):
        started = _at(st.st_mtime + behind_s)
        assert first_failure(verify_outputs(FRESH, str(tmp_path), started, started)) is None, behind_s
    started = _at(st.st_mtime + FS_TICK_S + 0.05)
    bad = first_failure(verify_outputs(FRESH, str(tmp_path), started, started))
    assert bad is not None and "is stale: modified " in bad.detail


def test_the_file_systems_own_stamp_is_the_reference_when_given(tmp_path: Path) -> None:
    """A marker stamped just before the spawn: files written after it are fresh whatever the
    engine's clock said; files from before it are stale."""
    old = _brand_new(tmp_path)
    time.sleep(FS_TICK_S * 2)
    marker = tmp_path / "marker"
    marker.touch()
    since = marker.stat().st_mtime_ns
    late_clock = _at(time.time() + 10)  # an engine clock far ahead of the files: not used
    bad = first_failure(verify_outputs(FRESH, str(tmp_path), late_clock, late_clock, since_ns=since))
    assert bad is not None and bad.detail.startswith("output out.json is stale"), old
    _brand_new(tmp_path)
    assert first_failure(verify_outputs(FRESH, str(tmp_path), late_clock, late_clock, since_ns=since)) is None


def test_every_run_that_writes_a_new_file_passes_the_fresh_check(store: Store, tmp_path: Path) -> None:
    """The issue's reproduction, with real child processes: a run whose command writes its
    output brand-new, triggered again and again. Before the fix about one run in ten was
    failed as stale (the command wrote within a kernel tick of started_at)."""
    engine = _engine(store, tmp_path, WRITER.format(i=0))
    try:
        for _ in range(TRIGGERS):
            (tmp_path / "out-0.json").unlink(missing_ok=True)  # brand-new, written by the run
            _trigger(store, ["writer-0"])
            engine.settle()
    finally:
        engine.executors.shutdown(wait_s=0)
    rows = [dict(r) for r in store.execute("SELECT state, reason, started_at FROM runs")]
    assert len(rows) == TRIGGERS
    failed = [r for r in rows if r["state"] != "succeeded"]
    assert not failed, failed


def test_a_file_older_than_the_run_still_fails_the_fresh_check(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out-0.json"
    engine = _engine(store, tmp_path, WRITER.format(i=0).replace("echo '{\\\"items\\\": [1]}' > out-0.json", "true"))
    out.write_text('{"items": [1]}')
    past = time.time() - 0.5  # half a second: far more than any file-system tick
    os.utime(out, (past, past))
    try:
        _trigger(store, ["writer-0"])
        engine.settle()
    finally:
        engine.executors.shutdown(wait_s=0)
    (row,) = [dict(r) for r in store.execute("SELECT state, reason FROM runs")]
    assert row["state"] == "failed", row
    assert row["reason"].startswith("output out-0.json is stale: modified "), row
