"""What the console does before its first frame: it imports what the events table needs and
leaves the rest (the engine and its tick, foresight, Apprise, Prometheus, the definitions'
validators and records, the PostgreSQL store, click and the other commands, the screens no key
opened yet) until the rows are on screen; and the watcher,
started after that frame, still sees what another program changed after those rows were read."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.css.scalar import Scalar
from textual.screen import Screen
from textual.widgets import Static

from evman.console.app.first_read import FirstRead
from evman.console.app.styles import LATER_CSS, StyledApp
from evman.console.app.watcher import Watcher
from evman.console.screens.services import DatabaseChanged
from evman.engine.clock import FakeClock
from evman.engine.store import Store, open_store
from tests.outside import ROOT

LATER: tuple[str, ...] = (
    "apprise",
    "prometheus_client",
    "numpy",
    "sqlite_utils",
    "schedule",
    "cronsim",
    "evman.engine.foresight",
    "evman.engine.engine",
    "evman.engine.watch.heartbeat",
    "evman.engine.watch.metrics",
    "evman.engine.tick.context",
    "evman.engine.stages",
    "evman.engine.fleet.membership",
    "evman.engine.definitions",
    "evman.engine.paging",
    "evman.engine.retention",
    "evman.engine.verbs.runs",
    "evman.console.views.plan",
    "evman.console.screens.plan",
    "evman.console.screens.run_detail",
    "evman.engine.model",
    "evman.engine.store.pg_store",
    "evman.engine.store.fleet",
    "evman.engine.store.postgres",
    "evman.engine.store.conninfo",
    "evman.console.cli.definitions",
    "evman.console.cli.reading",
    "evman.console.cli.upkeep",
    "evman.console.cli",
    "click",
    "zoneinfo",
)
"""Modules (and packages: any module under them) the console loads only after its first frame."""

FIRST_FRAME = """
import gc, json, sys
from evman.console.app import evman_app

def shown(app, rest=evman_app.EvmanApp.first_frame_shown):
    seen = {"modules": sorted(sys.modules), "rows": app.screen.table.shown_names(), "collecting": gc.isenabled()}
    seen["switch"] = sys.getswitchinterval()
    seen["read first"] = app.first_read is not None and app.first_read.rows.done()
    seen["styled"] = sorted(app.stylesheet.rules_map)
    rest(app)
    seen["collecting after"] = gc.isenabled()
    seen["switch after"] = sys.getswitchinterval()
    seen["styled after"] = sorted(app.stylesheet.rules_map)
    print("FIRST-FRAME " + json.dumps(seen), file=sys.__stdout__, flush=True)
    app.exit(0)

evman_app.EvmanApp.first_frame_shown = shown
from evman.console.start import main
main(["--db", sys.argv[1], "--readonly"])
"""


def test_the_first_frame_imports_only_what_the_events_table_needs(seed: Callable[..., Path]) -> None:
    """`evman --db DB --readonly` as a user starts it (the script's entry point), stopped at the first frame with
    rows: what it has imported by then, and the garbage collector held until then (see
    console/app/collector.py) and collecting again after."""
    db = seed()
    env = {"TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_FRAME, str(db)], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIRST-FRAME ")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    seen = json.loads(lines[0].removeprefix("FIRST-FRAME "))
    assert seen["rows"] == ["broken", "fetch", "publish", "report", "slow"], "the first frame has the rows"
    early = sorted(m for m in seen["modules"] if m in LATER or m.startswith(tuple(f"{p}." for p in LATER)))
    assert early == [], f"imported before the first frame: {early}"
    assert "evman.console.screens.events" in seen["modules"] and "textual.app" in seen["modules"]
    assert (seen["collecting"], seen["collecting after"]) == (False, True)
    assert (seen["switch"], seen["switch after"]) == (0.0005, 0.005), "a short switch interval until the first frame"
    assert seen["read first"], "the rows came from the read started before Textual was imported"
    assert "#note" in seen["styled"] and "#help" not in seen["styled"], "the other screens' styles wait"
    assert {"#help", "#runs", "#tree"} <= set(seen["styled after"])


def test_a_screen_pushed_before_the_first_frame_is_styled() -> None:
    """screens.tcss (the other screens' styles) is read after the first frame, or when a screen
    is pushed sooner: the pushed screen is styled by it either way."""

    class Shown(Screen[None]):
        def compose(self) -> ComposeResult:
            yield Static("title", id="title")

    class Bare(StyledApp):
        def compose(self) -> ComposeResult:
            yield Static("first")

    async def scenario() -> None:
        app = Bare()
        async with app.run_test(size=(80, 20)) as pilot:
            assert not app.stylesheet.has_source(str(LATER_CSS))
            await app.push_screen(Shown())
            await pilot.pause()
            assert app.stylesheet.has_source(str(LATER_CSS))
            title = app.screen.query_one("#title", Static)
            assert (title.styles.height, title.styles.padding.left) == (Scalar.parse("1"), 1)

    asyncio.run(scenario())


def test_the_first_read_starts_before_textual_is_imported(seed: Callable[..., Path]) -> None:
    """launch.py opens the store and starts reading the first rows (first_read.py) before it
    imports the app: neither module may import Textual."""
    code = (
        "import sys; from evman.console.app import first_read, launch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("where", ["screen", "launch"])
def test_the_watcher_sees_a_change_made_after_the_first_rows_were_read(seed: Callable[..., Path], where: str) -> None:
    """The watcher starts after the first frame; its first look is taken where the first
    rows are read (by the events screen as the app makes it, or as `evman` starts, before
    Textual is imported), so that a commit in between is a change it reports, not its baseline."""
    db = seed()
    first = FirstRead(db, readonly=True) if where == "launch" else None
    store = first.store if first else open_store(db)

    @contextmanager
    def reading() -> Iterator[Store]:
        yield store

    posted: list[object] = []
    watcher = Watcher(reading, FakeClock(), posted.append, lambda: [], engine_here=lambda: False)
    if first:
        assert [r["name"] for r in first.rows.result(10)] == ["broken", "fetch", "publish", "report", "slow"]
        watcher.looked_first(first.look)
    else:
        watcher.look_first(store)  # the events screen does this as it reads its first rows
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET held = 1 WHERE name = 'report'")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any(isinstance(m, DatabaseChanged) for m in posted) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
        thread.join(5)
        store.close()
    changes = [m for m in posted if isinstance(m, DatabaseChanged)]
    assert changes and changes[0].events == {"report"}, posted
