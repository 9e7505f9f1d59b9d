"""The pools' line in the projection, in exact arithmetic (run times without spread): runs in
line take their turn after the holder and after each other, a run that needs more slots than
its pool has never starts, and an occurrence not in the line yet counts only today's holders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from evman.engine.foresight import Occurrence, build_graph, occurrence, project
from evman.engine.foresight.projection import Plan
from evman.engine.foresight.waits import Claim, PoolFacts, Waits, waiting_text
from evman.engine.model import RunState

NOW = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
M = 60.0


def const(minutes: float) -> tuple[float, ...]:
    return (minutes * M,) * 20


def plan_of(occs: Sequence[Occurrence], pools: PoolFacts) -> Plan:
    graph = build_graph([o.event for o in occs], {}, {})
    return project(graph, {o.event: o for o in occs}, NOW, 1.0, Waits(pools))


def hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


LOCK = (("lock", 1),)
OCCS = [
    occurrence("extract", RunState.RUNNING, const(60), started_at=datetime(2026, 3, 10, 0, 30, tzinfo=UTC)),
    occurrence("first", RunState.WAITING, const(20)),
    occurrence("second", RunState.WAITING, const(10)),
    occurrence("later", RunState.WAITING, const(5), opens_at=datetime(2026, 3, 10, 1, 10, tzinfo=UTC)),
]
HOLDER = Claim(1, "extract", LOCK, holding=True, projected=True, started_ts=OCCS[0].started_ts)
FIRST, SECOND = Claim(2, "first", LOCK, False, True), Claim(3, "second", LOCK, False, True)
USES = {"extract": LOCK, "first": LOCK, "second": LOCK, "later": LOCK}


def test_the_line_takes_its_turn_after_the_holder_and_each_other() -> None:
    plan = plan_of(OCCS, PoolFacts({"lock": 1}, (HOLDER,), (FIRST, SECOND), USES))
    assert plan["extract"].p50_ts == pytest.approx(NOW.timestamp() + 30 * M, abs=2)
    assert plan["first"].start_ts == pytest.approx(NOW.timestamp() + 30 * M, abs=2)
    assert plan["second"].start_ts == pytest.approx(NOW.timestamp() + 50 * M, abs=2)  # after first's 20 minutes
    # not in line yet: only today's holder counts (whoever joins the line later is not known)
    assert plan["later"].start_ts == pytest.approx(NOW.timestamp() + 30 * M, abs=2)
    said = {e: waiting_text(plan.waiting(e), hhmm) for e in ("first", "second", "later", "extract")}
    assert said["first"] == "pool lock: behind run 1 extract (p50 ends 01:30); 30m of slack lost"
    assert (
        said["second"]
        == "pool lock: behind run 1 extract (p50 ends 01:30), after run 2 first in line; 50m of slack lost"
    )
    assert said["later"] == "pool lock: behind run 1 extract (p50 ends 01:30); 20m of slack lost"
    assert said["extract"] is None


def test_a_bigger_pool_lets_the_line_start_now_and_says_nothing() -> None:
    plan = plan_of(OCCS, PoolFacts({"lock": 3}, (HOLDER,), (FIRST, SECOND), USES))
    assert plan["first"].start_ts == pytest.approx(NOW.timestamp(), abs=2)
    assert plan["second"].start_ts == pytest.approx(NOW.timestamp(), abs=2)
    assert plan.waiting("first") is None and plan.waiting("second") is None


def test_a_run_needing_more_slots_than_its_pool_never_starts_nor_does_the_line_behind_it() -> None:
    greedy = FIRST._replace(uses=(("lock", 2),))
    plan = plan_of(OCCS, PoolFacts({"lock": 1}, (HOLDER,), (greedy, SECOND), {**USES, "first": (("lock", 2),)}))
    assert plan["first"].is_unbounded and plan["second"].is_unbounded
    assert waiting_text(plan.waiting("first"), hhmm) == "pool lock: needs 2 slots, more than its 1"
