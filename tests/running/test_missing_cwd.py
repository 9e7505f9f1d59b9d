"""A working directory that is gone fails the run with words that say so."""

from __future__ import annotations

import shutil
from pathlib import Path


def test_missing_working_directory_is_named(engine_factory, clock, store, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    engine = engine_factory(f'[[event]]\nname = "w"\nrun = "true"\ncwd = "{work}"\n')
    shutil.rmtree(work)
    store.add_request("trigger", "w", requested_by="t")
    engine.settle(clock.now())
    row = store.run(1)
    assert row["state"] == "failed"
    assert f"working directory {work} does not exist" in row["reason"]
