"""Foresight's statements on SQLite and on PostgreSQL: the last 20 successes of many events
at once, recent runs, the events a deadline depends on, and its alert rows (opened, paged
again, resolved) written by the engine's stage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.foresight.reading import deadline_scope, read_plan
from evman.engine.store import Store, open_store
from tests.outside import ROOT

pytestmark = pytest.mark.backends

DEFS = f"""
[defaults]
timezone = "UTC"
at_risk_margin = "10m"

[[event]]
name = "a"
call = "bench.simjobs:job"
cwd = "{ROOT}"
schedule = "every day at 01:00"
on_success = ["b"]

[[event]]
name = "b"
call = "bench.simjobs:job"
cwd = "{ROOT}"
deadline = "02:30"

[[event]]
name = "c"
call = "bench.simjobs:job"
cwd = "{ROOT}"
requires = "success(b)"
window = {{ latest = "03:00" }}

[[event]]
name = "loner"
call = "bench.simjobs:job"
cwd = "{ROOT}"
schedule = "every day at 12:00"
"""


def test_histories_scope_and_alert_rows(
    engine_factory: Callable[..., Engine], clock: FakeClock, store: Store, db_path: Path
) -> None:
    engine = engine_factory(DEFS)
    took = {"a": 600.0, "b": 1200.0, "c": 1800.0, "loner": 60.0}
    nights = 22
    with SimJobs(clock, lambda event, _attempt: took[event] + nights_done[0]) as sim:
        nights_done = [0]
        driver = Driver(engine, sim, step_s=None)
        for night in range(nights):
            nights_done[0] = night
            driver.run_until(clock.now() + timedelta(days=1))
        durations = store.succeeded_durations(["a", "b", "c", "loner", "ghost"])
        assert durations["ghost"] == []
        # newest first; SQLite's julianday arithmetic is good to some microseconds
        assert durations["a"] == pytest.approx([600.0 + n for n in range(nights - 1, nights - 21, -1)], abs=1e-3)
        assert len(durations["c"]) == 20 and durations["c"][0] == pytest.approx(1800.0 + nights - 1, abs=1e-3)
        assert {r["name"] for r in store.foresight_candidates()} == {"a", "b", "c"}
        scope = deadline_scope(store)
        assert set(scope.specs) == {"a", "b", "c"} and scope.deadlines == {"b", "c"}
        assert scope.requires == {"c": ["b"]}
        recent = store.runs_ended_since(["a", "b"], clock.now() - timedelta(hours=30))
        assert sorted(r["event"] for r in recent) == ["a", "b"]
        # tonight b hangs: c (half an hour, after b; its window's end, 03:00, is its deadline)
        # is projected late, paged once: nothing new happens after, so nothing pages again
        # (the clock moving the expected finish on is not news); acknowledged at 02:45
        took["b"] = float("inf")
        driver.step_s = 60.0
        midnight = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)  # a runs at 01:00 tonight
        driver.run_until(midnight.replace(hour=2, minute=45))
        late = {r["kind"]: r for r in store.alerts(event="c", open_only=True)}["projected_late"]
        assert late["count"] == 1, late
        assert late["message"].startswith("c: ") and "likely to miss 03:00; expected " in late["message"]
        assert "path: a ✓ → b running" in late["message"]
        other = open_store(db_path)
        other.add_request("ack", f"alert:{late['id']}", requested_by="driver")
        other.close()
        driver.run_until(midnight.replace(hour=2, minute=58))
        open_ = {r["kind"]: r for r in store.alerts(event="c", open_only=True)}
        assert set(open_) == {"projected_late"}  # an at_risk before it was superseded
        acked = open_["projected_late"]
        assert (acked["count"], acked["pending"], acked["acknowledged_by"]) == (1, 0, "driver (request 1)")
        assert {r["kind"] for r in store.alerts(event="b", open_only=True)} <= {"at_risk", "projected_late"}
        plan = read_plan(store, clock.now(), scoped=True).plan
        assert plan["c"].slack_s is not None and plan["c"].slack_s < -25 * 60
        sim.stop()


@pytest.mark.sqlite_only
def test_specs_without_deadline_or_followers_are_not_candidates(tmp_path: Path) -> None:
    """Specs written by hand or by older tools leave keys out (bench/catalogue.py writes five);
    none of them may be read, let alone decoded, when the engine starts."""
    from bench import catalogue

    db = tmp_path / "catalogue.db"
    catalogue.build(db, 50)
    store = open_store(db)
    try:
        assert store.foresight_candidates() == []
        assert deadline_scope(store).specs == {}
    finally:
        store.close()
