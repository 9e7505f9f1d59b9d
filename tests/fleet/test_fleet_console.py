"""The console on a PostgreSQL database: its engine joins the fleet, the header counts the live
engines, and a second engine that joins shows up in the count."""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evman.console.app.evman_app import make_app
from evman.console.widgets.status_bar import StatusBar
from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.store import open_store


async def _until(pilot: Any, ready: Any, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def test_the_header_counts_the_live_engines(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVMAN_LOGS_DIR", str(tmp_path / "console-logs"))  # not in the checkout
    store = open_store(pg_dsn)
    defs = parse_definitions(
        textwrap.dedent('[[event]]\nname = "a"\nrun = "true"\n'),
        source=str(tmp_path / "d.toml"),
        base_dir=tmp_path,
        known_events=set(),
    )
    catalog.save(store, defs, now=datetime.now(UTC))
    clock = FakeClock(datetime.now(UTC))
    other = Engine(open_store(pg_dsn), clock=clock, tick_s=0.2, logs_dir=tmp_path / "logs")
    loop = threading.Thread(target=other.run)

    async def scenario() -> str:
        app = make_app(pg_dsn, clock=clock, start_engine=True)
        async with app.run_test(size=(120, 30)) as pilot:
            await _until(pilot, lambda: app.status.engines == 1, "the console's own engine")
            other.start()  # and its loop, which keeps renewing its lease while the console looks
            loop.start()
            await _until(pilot, lambda: app.status.engines == 2, "the second engine to be counted")
            bar = app.screen.query_one(StatusBar)
            return str(bar.render())

    try:
        header = asyncio.run(scenario())
    finally:
        other.stop()
        if loop.is_alive():
            loop.join(10)
        other.executors.shutdown(wait_s=0)
        store.close()
    assert "2 live engines" in header
