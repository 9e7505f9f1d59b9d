"""The housekeeper's thread keeps out of the tick's way: a paced pass starts each piece of work
only between two ticks (the engine's `not_ticking`), and the engine clears it for exactly as
long as a tick runs. A real engine and a real SQLite file; the pass in a thread of its own, as
beside an engine."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.retention import Housekeeper, start_housekeeper
from evman.engine.store import Store, open_store
from tests.conftest import load_text
from tests.retention.history import add_runs, ids

DAY = timedelta(days=1)
DEFS = """
    [defaults]
    timezone = "UTC"
    keep = { runs = "10d", logs = "3d" }
    [[event]]
    name = "hourly"
    run = "true"
"""


def test_a_paced_pass_deletes_nothing_while_a_tick_runs(
    store: Store, clock: FakeClock, tmp_path: Path, db_path: Path
) -> None:
    load_text(store, DEFS, tmp_path, clock.now())
    made = add_runs(store, tmp_path / "logs", "hourly", clock.now() - 30 * DAY, 200, timedelta(hours=1))
    ticking = threading.Event()  # cleared: the engine is in a tick
    keeper = Housekeeper(open_store(db_path), clock, host="here", not_ticking=ticking)
    passing = threading.Thread(target=keeper.run_pass, args=(clock.now(),), kwargs={"pace": True})
    try:
        passing.start()
        deadline = time.monotonic() + 5
        while keeper.current is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # well inside TICK_WAIT_S: the pass is waiting for the tick's end
        assert keeper.current is not None and keeper.current.runs == keeper.current.logs == 0
        assert ids(store, "hourly") == set(made)
        ticking.set()  # the tick ended
        passing.join(30)
        assert keeper.last is not None and keeper.last.runs > 100 and keeper.current is None
        assert len(ids(store, "hourly")) < len(made)
    finally:
        ticking.set()
        passing.join(30)
        keeper.store.close()


def test_the_engine_says_when_it_is_not_ticking(store: Store, clock: FakeClock, tmp_path: Path, db_path: Path) -> None:
    load_text(store, DEFS, tmp_path, clock.now())
    engine = Engine(store, clock=clock, logs_dir=tmp_path / "logs")
    seen: list[bool] = []
    stage = engine.foresight.run

    def foresight(tick: object) -> None:  # a stage of the tick, watched
        seen.append(engine.not_ticking.is_set())
        stage(tick)  # type: ignore[arg-type]

    engine.foresight.run = foresight  # type: ignore[method-assign]
    engine.start()
    keeper = start_housekeeper(db_path, engine, first_after_s=3600)
    try:
        assert keeper.not_ticking is engine.not_ticking
        engine.tick(clock.now())
        engine.tick(clock.now() + timedelta(minutes=1))
        assert seen == [False, False] and engine.not_ticking.is_set()
    finally:
        keeper.stop()
        engine.executors.shutdown(wait_s=5)
