"""The foresight stage on the real engine (FakeClock, simulated jobs, a real SQLite file, the
real notifier paging a json:// receiver): a relative deadline judged from the chain's head,
a held head paged once and escalated once, a restart that keeps an open alert quiet, and a
recompute that reads only what changed."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier
from evman.engine.store import Store, open_store
from tests.outside import ROOT
from tests.receivers import HttpReceiver

TONIGHT = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)
MINUTES = {"a": 20, "b": 10, "c": 10}
DEFS = """
[defaults]
timezone = "UTC"
driver = "ops"

[routes]
ops = {{ urls = ["{ops}"], escalate_to = "lead", escalate_after = "30m" }}
lead = ["{lead}"]

[[event]]
name = "a"
call = "bench.simjobs:job"
cwd = "{root}"
schedule = "every day at 22:00"
on_success = ["b"]

[[event]]
name = "b"
call = "bench.simjobs:job"
cwd = "{root}"
on_success = ["c"]

[[event]]
name = "c"
call = "bench.simjobs:job"
cwd = "{root}"
deadline = "+60m"
"""


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


class Night:
    """Six nights of history, then tonight, paging through the receiver."""

    def __init__(self, tmp: Path, http: HttpReceiver) -> None:
        self.db = tmp / "stage.db"
        self.tmp, self.http = tmp, http
        self.clock = FakeClock(TONIGHT - timedelta(days=6, hours=1))
        text = DEFS.format(ops=http.url("/ops"), lead=http.url("/lead"), root=ROOT)
        defs = parse_definitions(textwrap.dedent(text), source=str(tmp / "d.toml"), base_dir=tmp)
        self.store = open_store(self.db)
        catalog.save(self.store, defs, now=self.clock.now())
        self.engine = self.start()
        self.notifier = Notifier(self.db, self.clock, timeout_s=2.0, attempt_cap_s=5.0, throttle_s=0.0)
        self.slow: dict[str, float] = {}

    def start(self) -> Engine:
        engine = Engine(self.store, clock=self.clock, logs_dir=self.tmp / "logs")
        engine.start()
        return engine

    def took(self, event: str, _attempt: int) -> float:
        return MINUTES[event] * 60 * self.slow.get(event, 1.0) if self.clock.now() >= TONIGHT else MINUTES[event] * 60

    def deliver(self, now: datetime) -> None:
        self.notifier.run_once(now)

    def pages(self, path: str) -> list[str]:
        return [p.json["title"] for p in self.http.posts if p.path == path]

    def ask(self, verb: str, target: str) -> None:
        other = open_store(self.db)  # another program's connection: the engine notices its commit
        other.add_request(verb, target, requested_by="driver")
        other.close()

    def run(self, body: Callable[[Driver], None]) -> None:
        try:
            with SimJobs(self.clock, self.took) as sim:
                driver = Driver(self.engine, sim, step_s=None)
                driver.run_until(TONIGHT - timedelta(hours=1))
                assert self.http.posts == [], "six ordinary nights page nothing"
                driver.step_s = 60.0
                body(driver)
        finally:
            self.notifier.stop()
            self.engine.executors.shutdown(wait_s=0)


def test_a_relative_deadline_counts_from_the_chains_head(tmp_path: Path, http: HttpReceiver) -> None:
    """c's "+60m" is 23:00 (a fell due at 22:00), not 60 minutes after c is triggered: with a
    three times its usual 20 minutes, c misses, and is paged before it does. Anchored to c's
    own trigger (the issue's bug) its deadline would come an hour after the chain reaches it."""
    night = Night(tmp_path, http)
    night.slow = {"a": 3.0}  # a ends 23:00: c cannot finish by then

    def body(driver: Driver) -> None:
        driver.run_until(TONIGHT + timedelta(minutes=58), night.deliver)
        assert any(t.startswith("[evman] projected_late: c") for t in night.pages("/ops")), night.pages("/ops")
        driver.run_until(TONIGHT + timedelta(minutes=85), night.deliver)  # c runs from 23:20

    night.run(body)
    current = night.engine.foresight.current["c"]
    assert current.run_id is not None and current.anchor == TONIGHT
    assert current.occurrence.deadline_ts == (TONIGHT + timedelta(minutes=60)).timestamp()
    # still the same occurrence: its alert stays open (the anchoring moved the
    # deadline to 00:20 once c started, resolved the alert and judged c on time)
    assert [(a["kind"], a["status"]) for a in night.store.alerts(event="c")] == [("projected_late", "open")]


def test_a_held_head_is_paged_once_then_escalated_once(tmp_path: Path, http: HttpReceiver) -> None:
    """The issue: a median of 44 pages per missed deadline while nobody acknowledges. Held
    from 21:00: one page (after the hold time), the escalation 30 minutes later (to both
    routes), and nothing more however far the clock moves the projection."""
    night = Night(tmp_path, http)

    def body(driver: Driver) -> None:
        night.ask("hold", "a")
        driver.run_until(TONIGHT + timedelta(minutes=59), night.deliver)

    night.run(body)
    ops, lead = night.pages("/ops"), night.pages("/lead")
    assert ops == ["[evman] projected_late: c", "[evman] projected_late: c"], ops
    assert lead == ["[evman] projected_late: c"], lead
    message = night.http.posts[0].json["message"]
    assert "c will miss 23:00 unless someone acts: a is held" in message


def test_a_restarted_engine_keeps_an_open_alert_quiet(tmp_path: Path, http: HttpReceiver) -> None:
    """Held from 21:00: paged at 21:10 and escalated at 21:40. A new engine on the same
    database at 22:15 takes the open alert as it is: no new page for what was already said."""
    night = Night(tmp_path, http)
    before: list[str] = []

    def body(driver: Driver) -> None:
        night.ask("hold", "a")
        driver.run_until(TONIGHT + timedelta(minutes=15), night.deliver)
        before.extend(night.pages("/ops"))
        night.engine.executors.shutdown(wait_s=0)
        night.engine = driver.engine = night.start()  # the same database, a new engine
        driver.run_until(TONIGHT + timedelta(minutes=45), night.deliver)

    night.run(body)
    assert before == ["[evman] projected_late: c"] * 2
    rows = [(a["kind"], a["status"], a["count"], a["pages"]) for a in night.store.alerts(event="c")]
    assert night.pages("/ops") == before, rows
    assert rows == [("projected_late", "open", 1, 2)]
    assert "c" in night.engine.foresight.watches


def test_a_recompute_reads_only_what_changed(tmp_path: Path, http: HttpReceiver) -> None:
    night = Night(tmp_path, http)
    seen: list[tuple[set[str], dict[str, object]]] = []

    def body(driver: Driver) -> None:
        stage = night.engine.foresight
        original = stage._read

        def read(store: Store, tick: object) -> set[str]:
            found = original(store, tick)  # type: ignore[arg-type]
            seen.append((found, dict(stage.current)))
            return found

        stage._read = read  # type: ignore[method-assign]
        driver.run_until(TONIGHT + timedelta(minutes=30))

    night.run(body)
    quiet = [(found, current) for found, current in seen if not found]
    assert quiet, "clock-only recomputes happened"
    assert any(found == {"a"} for found, _ in seen)  # a started: only a is read again
    assert all(found <= {"a", "b", "c"} and len(found) <= 2 for found, _ in seen)


def test_the_history_kept_from_the_ended_runs_is_the_stores(tmp_path: Path, http: HttpReceiver) -> None:
    """Tonight's successes join each event's history from the runs the stage reads anyway when
    a run ends, without reading 20 runs again: the same durations, newest first, as the store's."""
    night = Night(tmp_path, http)
    night.slow = {"a": 1.5, "b": 2.0}
    asked: list[list[str]] = []

    def body(driver: Driver) -> None:
        original = night.store.succeeded_durations

        def durations(events: Sequence[str], last_n: int = 20) -> dict[str, list[float]]:
            asked.append(list(events))
            return original(events, last_n)

        night.store.succeeded_durations = durations  # type: ignore[method-assign]
        driver.run_until(TONIGHT + timedelta(minutes=90))
        night.store.succeeded_durations = original  # type: ignore[method-assign]

    night.run(body)
    stage = night.engine.foresight
    stored = night.store.succeeded_durations(["a", "b", "c"])
    assert stored["a"][:2] == pytest.approx([30 * 60, 20 * 60], abs=0.01)  # tonight's 1.5 x 20 min first
    assert stored["b"][0] == pytest.approx(20 * 60, abs=0.01)
    for name in "abc":
        assert list(stage.facts[name].durations_s) == pytest.approx(stored[name], abs=0.01), name
    assert asked == []  # nothing read again from the store tonight
