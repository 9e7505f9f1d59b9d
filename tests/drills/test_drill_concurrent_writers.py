"""Concurrent writers drill: ten plain-sqlite3 writers and an `evman load` loop beside a busy
engine; no `database is locked` reaches them, no request is lost or handled twice, definition
changes take effect at the next tick. Runs in a process of its own (it reaps orphans)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.drills.common import REPORTS, ROOT


def _drill(tmp_path: Path, seconds: float, timeout: float) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.drills.concurrent_writers", "--dir", str(tmp_path), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    REPORTS.append(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr


def test_concurrent_writers_short(tmp_path: Path) -> None:
    _drill(tmp_path, 5, timeout=120)


@pytest.mark.long
@pytest.mark.timeout(900)
def test_concurrent_writers_long(tmp_path: Path) -> None:
    _drill(tmp_path, 60, timeout=800)
