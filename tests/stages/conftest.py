"""Fixtures for the stage tests; tests/conftest.py gives store, clock and engine_factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stages.stage_helpers import kill_group, running_pids


@pytest.fixture(autouse=True)
def kill_leftover_commands(db_path: Path) -> Iterator[None]:
    """A failing test must not leave `sleep` children behind on a shared machine."""
    yield
    for pid in running_pids(db_path):
        kill_group(pid)
