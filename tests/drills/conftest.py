"""The drills: short forms run in every `uv run pytest`; the long forms only with

    uv run pytest tests/drills -m long -n 0

which prints each drill's numbers (kills survived, requests written and handled, inputs tried)
at the end of the run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills.common import REPORTS, kill_group, rows

LONG_HELP = "long form of a drill; runs only with `uv run pytest tests/drills -m long -n 0`"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"long: {LONG_HELP}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "long" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason=LONG_HELP)
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("drill numbers")
    for text in REPORTS:
        terminalreporter.write_line(text)


@pytest.fixture(autouse=True)
def kill_left_commands(tmp_path: Path) -> Iterator[None]:
    """A failing drill must not leave commands running: kill the process group of every run
    still recorded as running in any database the drill made."""
    yield
    for db in tmp_path.rglob("*.db"):
        try:
            left = rows(db, "SELECT pid FROM runs WHERE state = 'running' AND pid IS NOT NULL")
        except sqlite3.Error:  # some drills leave files that are no database, on purpose
            continue
        for row in left:
            kill_group(int(row["pid"]))
