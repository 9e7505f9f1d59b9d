"""Driving evman for the benchmarks: definitions in, a real Engine thread, runs read back."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evman.engine.clock import SystemClock, parse_iso
from evman.engine.definitions import catalog
from evman.engine.engine import Engine
from evman.engine.model import Defaults, Definitions, EventSpec
from evman.engine.store import Store, open_store

BENCH_DIR = str(Path(__file__).resolve().parent.parent)
"""cwd of the benchmark's events: the repository, so `bench.jobs` imports."""


LEAD = {"scale": 1.0}
"""Multiplies every lead time (setup before a burst is due); the smoke test makes it short."""


def due_in(seconds: float) -> datetime:
    """A whole second at least `seconds` (times the lead scale) from now, in UTC."""
    at = datetime.now(UTC) + timedelta(seconds=seconds * LEAD["scale"])
    return at.replace(microsecond=0) + timedelta(seconds=1)


def at_schedule(when: datetime) -> str:
    return "at " + when.astimezone(UTC).replace(tzinfo=None).isoformat()


def load(store: Store, specs: Sequence[EventSpec]) -> None:
    defs = Definitions(Defaults(timezone="UTC"), {}, tuple(specs), source="bench")
    catalog.save(store, defs, now=datetime.now(UTC))


@dataclass
class RunRow:
    event: str
    state: str
    scheduled_for: datetime
    started_at: datetime | None
    ended_at: datetime | None


class EngineThread:
    """A real engine (SystemClock, tick 1 s) in a thread, as the console runs it."""

    def __init__(self, path: Path, tick_s: float = 1.0) -> None:
        self.store = open_store(path)
        self.engine = Engine(
            self.store,
            clock=SystemClock(),
            tick_s=tick_s,
            logs_dir=path.parent / (path.name + ".logs"),
            stop_grace_s=5.0,
        )
        self.thread = threading.Thread(target=self.engine.run, name="bench-engine", daemon=True)

    def start(self) -> None:
        self.engine.start()
        self.thread.start()

    def stop(self) -> None:
        self.engine.stop()
        self.thread.join(timeout=30)
        self.store.close()


def wait_finished(path: Path, expected: int, timeout_s: float) -> int:
    """Poll (from another connection) until `expected` runs have ended; returns how many did."""
    conn = sqlite3.connect(path, timeout=10)
    deadline = time.monotonic() + timeout_s
    done = 0
    try:
        while time.monotonic() < deadline:
            done = conn.execute("SELECT count(*) FROM runs WHERE ended_at IS NOT NULL").fetchone()[0]
            if done >= expected:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    return int(done)


def read_runs(path: Path) -> list[RunRow]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT event, state, scheduled_for, started_at, ended_at FROM runs").fetchall()
    finally:
        conn.close()
    out = []
    for event, state, scheduled, started, ended in rows:
        sched = parse_iso(scheduled)
        assert sched is not None
        out.append(RunRow(event, state, sched, parse_iso(started), parse_iso(ended)))
    return out
