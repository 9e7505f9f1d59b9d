"""Golden projections: a chain, a diamond, a never-run event, a running overrun, a failed
upstream with and without retries, a held event, a deadline after midnight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from evman.engine.foresight import Occurrence, build_graph, estimate, nearest_rank, occurrence, project
from evman.engine.foresight.graph import CycleError
from evman.engine.foresight.projection import Plan
from evman.engine.model import EventSpec, RunState, Window
from evman.engine.timing.windows import resolve_deadline

NOW = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
M = 60.0
W, R, S, F = RunState.WAITING, RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED


def at(hh: int, mm: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 3, day, hh, mm, tzinfo=UTC)


def hist(p50_min: float, p90_min: float) -> tuple[float, ...]:
    """20 durations whose nearest-rank p50 is p50_min and p90 is p90_min (the 10th and 18th)."""
    return (p90_min * M,) * 10 + (p50_min * M,) * 10


def plan_of(
    occs: Sequence[Occurrence],
    edges: Mapping[str, Sequence[str]] | None = None,
    on_success: Mapping[str, Sequence[str]] | None = None,
    now: datetime = NOW,
) -> Plan:
    graph = build_graph([o.event for o in occs], edges or {}, on_success or {})
    return project(graph, {o.event: o for o in occs}, now, tick_s=1.0)


def test_nearest_rank_p50_and_p90_of_twenty_are_the_10th_and_18th() -> None:
    ordered = [float(i) for i in range(1, 21)]
    assert (nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.9)) == (10.0, 18.0)
    assert (nearest_rank([1.0, 2.0, 3.0, 4.0, 5.0], 0.5), nearest_rank([1.0, 2.0, 3.0, 4.0, 5.0], 0.9)) == (3.0, 5.0)
    est = estimate([float(i) for i in range(40, 0, -1)])  # newest first: only 40..21 count
    assert (est.p50_s, est.p90_s, est.samples, est.confidence) == (30.0, 38.0, 20, "history")


@pytest.mark.parametrize(
    ("kw", "p50", "p90"),
    [
        ({"expect_s": 1200.0, "runtime_max_s": 3000.0}, 1200.0, 3000.0),
        ({"expect_s": 1200.0}, 1200.0, 3600.0),
        ({"runtime_max_s": 3000.0}, 1500.0, 3000.0),
        ({}, 60.0, 180.0),
        ({"expect_s": 900.0, "runtime_max_s": 600.0}, 900.0, 900.0),
    ],
)
def test_thin_history_is_low_confidence_with_its_fallbacks(kw: dict[str, float], p50: float, p90: float) -> None:
    est = estimate([10.0, 11.0, 12.0, 13.0], **kw)  # four samples: fewer than five
    assert (est.p50_s, est.p90_s, est.samples, est.confidence) == (p50, p90, 4, "low")


def test_chain_adds_up_p50_and_p90_in_order() -> None:
    plan = plan_of(
        [
            occurrence("fetch", W, hist(20, 30), opens_at=at(1, 30)),
            occurrence("build", W, hist(40, 50)),
            occurrence("publish", W, hist(10, 15), deadline=at(3, 0)),
        ],
        on_success={"fetch": ["build"], "build": ["publish"]},
    )
    fetch, build, publish = plan["fetch"], plan["build"], plan["publish"]
    assert (fetch.projected_start, fetch.finish_p50, fetch.finish_p90) == (at(1, 30), at(1, 50), at(2, 0))
    assert (build.projected_start, build.finish_p50, build.finish_p90) == (at(1, 50), at(2, 30), at(2, 50))
    assert (publish.projected_start, publish.finish_p50, publish.finish_p90) == (at(2, 30), at(2, 40), at(3, 5))
    assert publish.slack_s == 20 * M and publish.slack_p90_s == -5 * M
    assert plan.critical_path("publish") == ("fetch", "build", "publish")
    assert fetch.slack_s is None  # no deadline


def test_diamond_waits_for_the_later_branch_and_names_it() -> None:
    plan = plan_of(
        [
            occurrence("a", S, hist(10, 10), started_at=at(0, 30), ended_at=at(0, 50)),
            occurrence("b", W, hist(30, 60)),
            occurrence("c", W, hist(45, 50)),
            occurrence("d", W, hist(10, 20), deadline=at(2, 30)),
        ],
        edges={"b": ["a"], "c": ["a"], "d": ["b", "c"]},
    )
    assert plan["a"].finish_p50 == at(0, 50)
    assert (plan["b"].finish_p50, plan["b"].finish_p90) == (at(1, 30), at(2, 0))
    assert (plan["c"].finish_p50, plan["c"].finish_p90) == (at(1, 45), at(1, 50))
    d = plan["d"]
    # p50 waits for c (01:45), p90 for b (02:00): each pass takes its own latest upstream
    assert (d.projected_start, d.finish_p50, d.finish_p90) == (at(1, 45), at(1, 55), at(2, 20))
    assert plan.critical_path("d") == ("a", "c", "d")
    assert d.slack_s == 35 * M


def test_never_run_event_uses_expect_and_says_low_confidence() -> None:
    plan = plan_of([occurrence("new", W, (), expect_s=20 * M, deadline=at(2, 0))])
    new = plan["new"]
    assert (new.estimate.confidence, new.estimate.samples) == ("low", 0)
    assert (new.finish_p50, new.finish_p90) == (at(1, 20), at(2, 0))
    assert new.slack_s == 40 * M


def test_running_overrun_has_one_tick_left_at_both_quantiles() -> None:
    plan = plan_of(
        [
            occurrence("build", R, hist(30, 40), started_at=at(0, 0)),
            occurrence("publish", W, hist(10, 20), deadline=at(1, 15)),
        ],
        on_success={"build": ["publish"]},
    )
    build, publish = plan["build"], plan["publish"]
    assert build.elapsed_s == 60 * M
    assert build.finish_p50 == build.finish_p90 == NOW + timedelta(seconds=1)
    assert build.projected_start == at(0, 0)
    assert (publish.finish_p50, publish.finish_p90) == (
        at(1, 10) + timedelta(seconds=1),
        at(1, 20) + timedelta(seconds=1),
    )
    assert publish.slack_s == 5 * M - 1


def test_running_within_its_history_counts_down_from_p50_and_p90() -> None:
    plan = plan_of([occurrence("build", R, hist(30, 40), started_at=at(0, 45))])
    assert (plan["build"].finish_p50, plan["build"].finish_p90) == (at(1, 15), at(1, 25))


def test_failed_upstream_with_retries_left_costs_backoff_plus_its_duration() -> None:
    plan = plan_of(
        [
            occurrence(
                "fetch", F, hist(20, 30), retries_left=2, backoff_s=5 * M, started_at=at(0, 30), ended_at=at(0, 55)
            ),
            occurrence("build", W, hist(10, 10), deadline=at(2, 0)),
        ],
        on_success={"fetch": ["build"]},
    )
    assert (plan["fetch"].projected_start, plan["fetch"].finish_p50, plan["fetch"].finish_p90) == (
        at(1, 5),
        at(1, 25),
        at(1, 35),
    )
    assert (plan["build"].finish_p50, plan["build"].finish_p90) == (at(1, 35), at(1, 45))
    assert plan.critical_path("build") == ("fetch", "build")


def test_failed_upstream_without_retries_makes_everything_after_it_unbounded() -> None:
    plan = plan_of(
        [
            occurrence("fetch", F, hist(20, 30), retries_left=0, started_at=at(0, 30), ended_at=at(0, 55)),
            occurrence("build", W, hist(10, 10)),
            occurrence("publish", W, hist(10, 10), deadline=at(6, 0)),
            occurrence("other", W, hist(10, 10), deadline=at(6, 0)),
        ],
        on_success={"fetch": ["build"], "build": ["publish"]},
    )
    for name in ("fetch", "build", "publish"):
        row = plan[name]
        assert row.is_unbounded and (row.finish_p50, row.finish_p90, row.projected_start) == (None, None, None)
    assert plan["publish"].slack_s is None
    assert plan.critical_path("publish") == ("fetch", "build", "publish")
    assert plan["other"].finish_p50 == at(1, 10)  # not on the failed path


def test_held_event_is_unbounded_and_so_are_its_followers() -> None:
    plan = plan_of(
        [occurrence("build", W, hist(10, 10), held=True), occurrence("publish", W, hist(10, 10), deadline=at(6, 0))],
        edges={"publish": ["build"]},
    )
    assert plan["build"].is_unbounded and plan["publish"].is_unbounded
    assert plan.critical_path("publish") == ("build", "publish")


def test_a_held_event_that_is_already_running_still_finishes() -> None:
    plan = plan_of([occurrence("build", R, hist(30, 40), started_at=at(0, 50), held=True)])
    assert plan["build"].finish_p50 == at(1, 20)


def test_deadline_after_midnight_resolves_to_the_next_morning() -> None:
    spec = EventSpec(name="publish", run=("true",), window=Window(earliest="22:00"), timezone="UTC")
    scheduled = at(22, 0, day=9)
    deadline = resolve_deadline("02:00", spec, scheduled)
    assert deadline == at(2, 0, day=10)
    plan = plan_of(
        [
            occurrence("build", R, hist(120, 150), started_at=at(22, 0, day=9)),
            occurrence("publish", W, hist(30, 40), deadline=deadline),
        ],
        on_success={"build": ["publish"]},
        now=at(23, 30, day=9),
    )
    publish = plan["publish"]
    assert (publish.finish_p50, publish.finish_p90) == (at(0, 30), at(1, 10))
    assert publish.slack_s == 90 * M and publish.slack_p90_s == 50 * M


def test_a_waiting_event_does_not_start_before_it_opens() -> None:
    plan = plan_of([occurrence("x", W, hist(10, 20), opens_at=at(4, 0))])
    assert (plan["x"].projected_start, plan["x"].finish_p50, plan["x"].finish_p90) == (at(4, 0), at(4, 10), at(4, 20))


def test_events_without_an_occurrence_hold_nobody_up() -> None:
    graph = build_graph(["a", "b"], {"b": ["a"]}, {})
    plan = project(graph, {"b": occurrence("b", W, hist(10, 10))}, NOW)
    assert list(plan) == ["b"] and plan["b"].finish_p50 == at(1, 10)
    assert plan.critical_path("b") == ("b",)


def test_a_cycle_is_refused_with_its_names() -> None:
    with pytest.raises(CycleError, match="cycle") as err:
        build_graph(["a", "b"], {"a": ["b"], "b": ["a"]}, {})
    assert "a" in str(err.value) and "b" in str(err.value)


def test_edges_to_unknown_events_are_ignored() -> None:
    graph = build_graph(["a"], {"a": ["ghost"]}, {"ghost": ["a"]})
    assert graph.order == ("a",) and graph.waits_for == {}
