"""W7's DAG nights (bench/dag.py) on the real engine: a FakeClock, simulated jobs
(bench/simjobs.py), a real SQLite file, and the real notifier paging a json:// receiver on
127.0.0.1 that records what arrived. Nobody acknowledges anything.

The driver ticks the engine at every run start and end and every 60 s (when its foresight
stage recomputes) from 21:30 until 30 minutes after the last deadline, and runs the
notifier after each of those ticks; the rest of the day runs without steps. What each night
records: when each deadline's event finished, every page received (time, kind, event), and
the projection (p50, p90, probability) as the stage had it 5 h, 3 h and 1 h before each
deadline, and when each step's first successful run of the night started and ended.

Nights are independent: a held night's head is cancelled (killed before it started) when its
night ends, then released, so that night's chain never runs the next day where tomorrow's
`success(E, "12h")` look-backs would take it for tomorrow's work; every night records the
steps that started before what they wait for had succeeded that night (`tangled`), and the
bench counts them (none expected)."""

from __future__ import annotations

import json
import math
import random
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from bench import dag
from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock, parse_iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.model import RunState
from evman.engine.paging.notifier import Notifier
from evman.engine.store import Store, open_store

ROOT: Final = Path(__file__).resolve().parent.parent
HORIZONS_H: Final = (5, 3, 1)
STEP_S: Final = 60.0


class Receiver:
    """Records every POST with the simulated time the notifier sent it at."""

    def __init__(self) -> None:
        self.at: datetime | None = None
        self.posts: list[tuple[datetime | None, str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append((outer.at, self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Page:
    at_s: float
    kind: str
    event: str
    path: str


@dataclass(frozen=True)
class Snapshot:
    at_s: float
    p50_s: float | None
    p90_s: float | None
    probability: float
    finished: bool


@dataclass(frozen=True)
class Point:
    """One recompute of one deadline, as the stage judged it (for replaying other thresholds)."""

    at_s: float
    probability: float
    p50_s: float | None
    finished: bool
    news: bool


@dataclass
class NightRecord:
    plan: dag.NightPlan
    deadlines: dict[str, float] = field(default_factory=dict)
    finishes: dict[str, float] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    snapshots: dict[tuple[str, int], Snapshot] = field(default_factory=dict)
    trajectory: dict[str, list[Point]] = field(default_factory=dict)
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    """step -> (started, ended) of its first successful run of the night (epoch seconds)."""

    @property
    def tangled(self) -> list[str]:
        """The steps that started before what they wait for had succeeded this night (they ran
        on another night's work), or ran while a step they wait for never succeeded."""
        out = []
        for step in dag.STEPS:
            if step.name not in self.steps:
                continue
            began = self.steps[step.name][0]
            if any(a not in self.steps or self.steps[a][1] > began + 1e-3 for a in step.after):
                out.append(step.name)
        return out

    def missed(self, event: str) -> bool:
        return self.finishes[event] > self.deadlines[event]

    def pages_of(self, event: str, path: str = "/ops") -> list[Page]:
        return [p for p in self.pages if p.event == event and p.path == path]


@dataclass(frozen=True)
class Sizes:
    history: int = 25
    per_fault: int = 40
    normal: int = 200
    """Enough for calibration: ~400 forecasts 5 h and 3 h before, ~180 still running 1 h before."""


class DagNights:
    def __init__(self, sizes: Sizes, tmp: Path, seed: int = 11) -> None:
        self.sizes, self.tmp = sizes, tmp
        self.rng = random.Random(seed)
        self.shape = dag.shape()
        self.flags = tmp / "w7-flags"
        self.night: dag.NightPlan | None = None
        self.ticks = 0

    def run(self, say: Callable[[str], None] = lambda _t: None) -> list[NightRecord]:
        self.flags.mkdir(parents=True, exist_ok=True)
        receiver = Receiver()
        clock = FakeClock(dag.FIRST_NIGHT - timedelta(hours=1))
        store = open_store(self.tmp / "w7-dag.db")
        text = dag.definitions(self.shape, ROOT, self.flags, receiver.url("ops"), receiver.url("lead"))
        defs = parse_definitions(textwrap.dedent(text), source=str(self.tmp / "w7-dag.toml"), base_dir=self.tmp)
        catalog.save(store, defs, now=clock.now())
        engine = Engine(store, clock=clock, logs_dir=self.tmp / "w7-dag-logs")
        engine.start()
        notifier = Notifier(self.tmp / "w7-dag.db", clock, throttle_s=0.0)
        asking = open_store(self.tmp / "w7-dag.db")  # requests come from another connection, as from the CLI
        try:
            with SimJobs(clock, self._took, self._fails) as sim:
                return self._nights(Driver(engine, sim, step_s=None), asking, notifier, receiver, say)
        finally:
            engine.executors.shutdown(wait_s=0)
            notifier.store.close()
            asking.close()
            store.close()
            receiver.close()

    def _nights(
        self, driver: Driver, store: Store, notifier: Notifier, receiver: Receiver, say: Callable[[str], None]
    ) -> list[NightRecord]:
        day = timedelta(days=1)
        for i in range(self.sizes.history):
            self._drive(driver, store, None, dag.plan_night(self.rng, self.shape, dag.FIRST_NIGHT + i * day, "normal"))
        out = []
        kinds = dag.schedule(self.rng, self.sizes.per_fault, self.sizes.normal)
        for i, kind in enumerate(kinds):
            start = dag.FIRST_NIGHT + (self.sizes.history + i) * day
            night = dag.plan_night(self.rng, self.shape, start, kind)
            out.append(self._drive(driver, store, (notifier, receiver), night))
            if i % 20 == 19:
                say(f"  W7 DAG night {i + 1} of {len(kinds)}")
        self.ticks = driver.ticks
        return out

    def _took(self, event: str, attempt: int) -> float:
        assert self.night is not None
        if attempt == 1 and event in self.night.fail_after:
            return self.night.fail_after[event]
        return self.night.took[event]

    def _fails(self, event: str, attempt: int) -> bool:
        return self.night is not None and attempt == 1 and event in self.night.fail_after

    def _drive(
        self, driver: Driver, store: Store, paging: tuple[Notifier, Receiver] | None, night: dag.NightPlan
    ) -> NightRecord:
        self.night = night
        record = NightRecord(night)
        start = night.start
        for event in dag.DEADLINES:
            record.deadlines[event] = (start + timedelta(minutes=self.shape.deadlines_min[event])).timestamp()
        flag = self.flags / dag.FLAG
        if night.kind == "never":
            flag.unlink(missing_ok=True)
        else:
            flag.touch()
        if night.kind == "held":
            store.add_request("hold", "head", requested_by="bench")
        driver.run_until(start - timedelta(minutes=30))
        end = datetime.fromtimestamp(max(record.deadlines.values()) + 1800, UTC)
        mark = len(paging[1].posts) if paging else 0
        driver.step_s = STEP_S
        tick = self._on_tick(driver, record, paging)
        if night.down_at_s is not None:
            down = start + timedelta(seconds=night.down_at_s)
            driver.run_until(down, tick)
            _down(driver, down + timedelta(seconds=dag.DOWN_S))
        driver.run_until(end, tick)
        driver.step_s = None
        if night.kind == "held":  # tonight's chain is not run tomorrow: the nights stay independent
            store.add_request("kill", "head", requested_by="bench")
            store.add_request("release", "head", requested_by="bench")
        flag.touch()
        driver.run_until(start + timedelta(hours=23))
        self._finishes(store, record)
        if paging:
            record.pages = [_page(at, path, body) for at, path, body in paging[1].posts[mark:]]
        return record

    def _on_tick(
        self, driver: Driver, record: NightRecord, paging: tuple[Notifier, Receiver] | None
    ) -> Callable[[datetime], None]:
        def on_tick(now: datetime) -> None:
            if paging is None:
                return
            notifier, receiver = paging
            receiver.at = now
            notifier.run_once(now)
            self._snapshot(driver.engine, record, now)

        return on_tick

    def _snapshot(self, engine: Engine, record: NightRecord, now: datetime) -> None:
        plan = engine.foresight.plan
        now_s = now.timestamp()
        if plan is None or now_s - plan.now_ts > STEP_S + 1:
            return
        for event in record.deadlines:
            points = record.trajectory.setdefault(event, [])
            if event in plan and (not points or points[-1].at_s < plan.now_ts):
                row = plan[event]
                odds = 1.0 if row.miss_probability is None or row.p50_ts is None else row.miss_probability
                done = row.state is RunState.SUCCEEDED
                points.append(Point(plan.now_ts, odds, row.p50_ts, done, engine.foresight.news))
        for event, deadline in record.deadlines.items():
            for hours in HORIZONS_H:
                at = deadline - hours * 3600
                if (event, hours) in record.snapshots or now_s < at or now_s > at + 2 * STEP_S or event not in plan:
                    continue
                row = plan[event]
                odds = 1.0 if row.miss_probability is None or row.p50_ts is None else row.miss_probability
                finished = row.state is RunState.SUCCEEDED
                record.snapshots[(event, hours)] = Snapshot(plan.now_ts, row.p50_ts, row.p90_ts, odds, finished)

    def _finishes(self, store: Store, record: NightRecord) -> None:
        since = record.plan.start - timedelta(hours=1)
        for r in store.runs_ended_since([s.name for s in dag.STEPS], since):
            began, ended = parse_iso(r["started_at"]), parse_iso(r["ended_at"])
            tonight = (parse_iso(r["scheduled_for"]) or since) >= since
            if r["state"] != RunState.SUCCEEDED.value or not tonight or began is None or ended is None:
                continue
            if r["event"] not in record.steps or ended.timestamp() < record.steps[r["event"]][1]:
                record.steps[r["event"]] = (began.timestamp(), ended.timestamp())
        for event in dag.DEADLINES:
            record.finishes[event] = record.steps[event][1] if event in record.steps else math.inf


def _down(driver: Driver, until: datetime) -> None:
    """No tick until `until`: the engine is down. Runs in flight end at their own times (as
    commands do under their supervisor, which outlives its engine) and are reaped after."""
    while True:
        end = driver.sim.next_end()
        if end is None or end >= until:
            break
        driver.sim.move_to(end)
    driver.sim.move_to(until)


def _page(at: datetime | None, path: str, body: dict[str, Any]) -> Page:
    """A post's kind and event, from its title ("[evman] projected_late: publish")."""
    title = str(body.get("title", ""))
    kind, _, event = title.removeprefix("[evman] ").partition(": ")
    return Page(at.timestamp() if at else math.nan, kind, event.strip(), path)
