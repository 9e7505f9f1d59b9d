"""Projections: exact arithmetic where the history has no spread (a chain, a diamond, a
failed upstream with and without retries, a held event, a deadline after midnight), and the
distribution's properties where it has (skew, joins, calibration, a running step conditioned
on its elapsed time, the miss probability)."""

from __future__ import annotations

import math
import random
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


def const(minutes: float) -> tuple[float, ...]:
    """20 runs of exactly `minutes`: the model has no spread, so the projection is exact arithmetic."""
    return (minutes * M,) * 20


def lognormal(median_min: float, sigma: float, seed: int, n: int = 20) -> tuple[float, ...]:
    rng = random.Random(seed)
    return tuple(rng.lognormvariate(math.log(median_min * M), sigma) for _ in range(n))


def close(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs((a - b).total_seconds()) < 0.05


def test_chain_adds_up_in_order() -> None:
    plan = plan_of(
        [
            occurrence("fetch", W, const(20), opens_at=at(1, 30)),
            occurrence("build", W, const(40)),
            occurrence("publish", W, const(10), deadline=at(3, 0)),
        ],
        on_success={"fetch": ["build"], "build": ["publish"]},
    )
    fetch, build, publish = plan["fetch"], plan["build"], plan["publish"]
    assert close(fetch.projected_start, at(1, 30)) and close(fetch.finish_p50, at(1, 50))
    assert close(build.projected_start, at(1, 50)) and close(build.finish_p90, at(2, 30))
    assert close(publish.finish_p50, at(2, 40)) and close(publish.finish_p90, at(2, 40))
    assert publish.slack_s == pytest.approx(20 * M, abs=0.05) and publish.miss_probability == 0.0
    assert plan.critical_path("publish") == ("fetch", "build", "publish")
    assert fetch.slack_s is None and fetch.miss_probability is None  # no deadline


def test_a_diamond_waits_for_the_later_branch_and_names_it() -> None:
    plan = plan_of(
        [
            occurrence("a", S, const(10), started_at=at(0, 30), ended_at=at(0, 50)),
            occurrence("b", W, const(30)),
            occurrence("c", W, const(45)),
            occurrence("d", W, const(10), deadline=at(2, 30)),
        ],
        edges={"b": ["a"], "c": ["a"], "d": ["b", "c"]},
    )
    assert close(plan["a"].finish_p50, at(0, 50))
    assert close(plan["b"].finish_p50, at(1, 30)) and close(plan["c"].finish_p50, at(1, 45))
    d = plan["d"]
    assert close(d.projected_start, at(1, 45)) and close(d.finish_p50, at(1, 55))
    assert plan.critical_path("d") == ("a", "c", "d")


def test_the_median_of_a_sum_of_skewed_steps_is_later_than_the_sum_of_medians() -> None:
    """Lognormal steps: each one's mean is above its median, so the chain's median finish
    is later than the sum of the medians, and its p90 earlier than the sum of the p90s (the
    issue's projection added medians and p90s, and was early at p50, optimistic nowhere)."""
    steps = [occurrence(f"s{i}", W, lognormal(60, 0.3, seed=i)) for i in range(6)]
    names = [o.event for o in steps]
    plan = plan_of(steps, on_success={a: [b] for a, b in zip(names, names[1:], strict=False)})
    last = plan[names[-1]]
    medians = sum(o.estimate.p50_s for o in steps)
    p90s = sum(o.estimate.p90_s for o in steps)
    assert last.finish_p50 is not None and last.finish_p90 is not None
    assert (last.finish_p50 - NOW).total_seconds() > medians
    assert (last.finish_p90 - NOW).total_seconds() < p90s


def test_a_join_finishes_later_than_either_branch_alone() -> None:
    """The maximum at a join: two equal independent branches are later together than each one."""
    plan = plan_of(
        [
            occurrence("a", W, lognormal(60, 0.3, seed=1)),
            occurrence("b", W, lognormal(60, 0.3, seed=1)),
            occurrence("j", W, const(1)),
        ],
        edges={"j": ["a", "b"]},
    )
    assert plan["j"].projected_start is not None and plan["a"].finish_p50 is not None
    assert plan["j"].projected_start > plan["a"].finish_p50 + timedelta(minutes=3)


def test_the_projection_is_calibrated_against_the_process_that_made_its_history() -> None:
    """Six lognormal steps with a join: nights drawn from the same process as the history
    finish by the projected p50 about half the time and by the p90 about nine in ten."""
    sigmas = (0.25, 0.3, 0.35, 0.3, 0.28, 0.32)
    medians = (30, 60, 45, 40, 20, 15)
    steps = [
        occurrence(f"s{i}", W, lognormal(m, s, seed=10 + i))
        for i, (m, s) in enumerate(zip(medians, sigmas, strict=True))
    ]
    edges = {"s1": ["s0"], "s2": ["s0"], "s3": ["s1", "s2"], "s4": ["s3"], "s5": ["s4"]}
    plan = plan_of(steps, edges=edges)
    last = plan["s5"]
    assert last.finish_p50 is not None and last.finish_p90 is not None
    p50, p90 = (last.finish_p50 - NOW).total_seconds(), (last.finish_p90 - NOW).total_seconds()
    rng = random.Random(99)
    below50 = below90 = 0
    for _ in range(4000):
        took = [rng.lognormvariate(math.log(m * M), s) for m, s in zip(medians, sigmas, strict=True)]
        total = took[0] + max(took[1], took[2]) + took[3] + took[4] + took[5]
        below50 += total <= p50
        below90 += total <= p90
    assert 0.38 <= below50 / 4000 <= 0.62
    assert 0.84 <= below90 / 4000 <= 0.96


def test_a_running_step_past_its_p50_has_its_remaining_time_from_the_slower_runs() -> None:
    """The issue: a step running past its p50 was "now + 1 s" forever. Conditioned on its
    elapsed time, what is left comes from the runs that lasted at least this long."""
    history = lognormal(30, 0.3, seed=4)
    p50 = sorted(history)[9]
    row = plan_of([occurrence("build", R, history, started_at=NOW - timedelta(seconds=p50 * 1.1))])["build"]
    assert row.finish_p50 is not None and row.finish_p90 is not None
    left50 = (row.finish_p50 - NOW).total_seconds()
    assert left50 > 60 and row.finish_p90 > row.finish_p50 + timedelta(minutes=2)
    assert row.elapsed_s == pytest.approx(p50 * 1.1)


def test_an_overrunning_step_widens_as_it_overruns() -> None:
    """Past every run in its history, the remaining time follows the fitted tail: its p90
    grows with the elapsed time, so an overrun does not project "any moment now"."""
    history = lognormal(30, 0.3, seed=4)
    worst = max(history)
    widths = []
    for factor in (1.5, 2.0, 3.0):
        row = plan_of([occurrence("b", R, history, started_at=NOW - timedelta(seconds=worst * factor))])["b"]
        assert row.finish_p50 is not None and row.finish_p90 is not None
        widths.append((row.finish_p90 - NOW).total_seconds())
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] > 0.1 * worst * 3


def test_a_running_step_within_its_history_counts_down() -> None:
    plan = plan_of([occurrence("build", R, const(30), started_at=at(0, 45))])
    assert close(plan["build"].finish_p50, at(1, 15)) and close(plan["build"].finish_p90, at(1, 15))


def test_the_miss_probability_is_the_share_of_samples_past_the_deadline() -> None:
    history = lognormal(60, 0.3, seed=8)
    late = plan_of([occurrence("x", W, history, deadline=NOW + timedelta(minutes=1))])["x"]
    easy = plan_of([occurrence("x", W, history, deadline=NOW + timedelta(hours=10))])["x"]
    middle = plan_of([occurrence("x", W, history, deadline=NOW + timedelta(minutes=60))])["x"]
    assert late.miss_probability == 1.0 and easy.miss_probability == 0.0
    assert middle.miss_probability is not None and 0.3 < middle.miss_probability < 0.7
    held = plan_of([occurrence("x", W, history, held=True, deadline=NOW + timedelta(hours=10))])["x"]
    assert held.miss_probability == 1.0 and held.is_unbounded


def test_the_same_facts_give_the_same_projection() -> None:
    """Fixed sampling orders: a recompute of the same facts does not jitter (pages would flap)."""
    occs = [
        occurrence("a", W, lognormal(40, 0.3, seed=2)),
        occurrence("b", W, lognormal(30, 0.3, seed=3), deadline=at(2, 0)),
    ]
    one = plan_of(occs, on_success={"a": ["b"]})["b"]
    two = plan_of(occs, on_success={"a": ["b"]})["b"]
    assert (one.finish_p50, one.finish_p90, one.miss_probability) == (
        two.finish_p50,
        two.finish_p90,
        two.miss_probability,
    )


def test_never_run_event_uses_expect_and_says_low_confidence() -> None:
    plan = plan_of([occurrence("new", W, (), expect_s=20 * M, deadline=at(2, 0))])
    new = plan["new"]
    assert (new.estimate.confidence, new.estimate.samples) == ("low", 0)
    assert new.finish_p50 is not None and abs((new.finish_p50 - at(1, 20)).total_seconds()) < 60
    assert new.finish_p90 is not None and at(1, 50) < new.finish_p90 < at(2, 10)  # p90 = 3 x expect


def test_failed_upstream_with_retries_left_costs_backoff_plus_its_duration() -> None:
    plan = plan_of(
        [
            occurrence(
                "fetch", F, const(20), retries_left=2, backoff_s=5 * M, started_at=at(0, 30), ended_at=at(0, 55)
            ),
            occurrence("build", W, const(10), deadline=at(2, 0)),
        ],
        on_success={"fetch": ["build"]},
    )
    assert close(plan["fetch"].projected_start, at(1, 5)) and close(plan["fetch"].finish_p50, at(1, 25))
    assert close(plan["build"].finish_p50, at(1, 35))
    assert plan.critical_path("build") == ("fetch", "build")


def test_failed_upstream_without_retries_makes_everything_after_it_unbounded() -> None:
    plan = plan_of(
        [
            occurrence("fetch", F, const(20), retries_left=0, started_at=at(0, 30), ended_at=at(0, 55)),
            occurrence("build", W, const(10)),
            occurrence("publish", W, const(10), deadline=at(6, 0)),
            occurrence("other", W, const(10), deadline=at(6, 0)),
        ],
        on_success={"fetch": ["build"], "build": ["publish"]},
    )
    for name in ("fetch", "build", "publish"):
        row = plan[name]
        assert row.is_unbounded and (row.finish_p50, row.finish_p90, row.projected_start) == (None, None, None)
    assert plan["publish"].slack_s is None
    assert plan.critical_path("publish") == ("fetch", "build", "publish")
    assert close(plan["other"].finish_p50, at(1, 10))  # not on the failed path


def test_held_event_is_unbounded_and_so_are_its_followers() -> None:
    plan = plan_of(
        [occurrence("build", W, const(10), held=True), occurrence("publish", W, const(10), deadline=at(6, 0))],
        edges={"publish": ["build"]},
    )
    assert plan["build"].is_unbounded and plan["publish"].is_unbounded
    assert plan.critical_path("publish") == ("build", "publish")


def test_a_held_event_that_is_already_running_still_finishes() -> None:
    plan = plan_of([occurrence("build", R, const(30), started_at=at(0, 50), held=True)])
    assert close(plan["build"].finish_p50, at(1, 20))


def test_deadline_after_midnight_resolves_to_the_next_morning() -> None:
    spec = EventSpec(name="publish", run=("true",), window=Window(earliest="22:00"), timezone="UTC")
    scheduled = at(22, 0, day=9)
    deadline = resolve_deadline("02:00", spec, scheduled)
    assert deadline == at(2, 0, day=10)
    plan = plan_of(
        [
            occurrence("build", R, const(120), started_at=at(22, 0, day=9)),
            occurrence("publish", W, const(30), deadline=deadline),
        ],
        on_success={"build": ["publish"]},
        now=at(23, 30, day=9),
    )
    publish = plan["publish"]
    assert close(publish.finish_p50, at(0, 30))
    assert publish.slack_s == pytest.approx(90 * M, abs=0.05) and publish.miss_probability == 0.0


def test_a_waiting_event_does_not_start_before_it_opens() -> None:
    plan = plan_of([occurrence("x", W, const(10), opens_at=at(4, 0))])
    assert close(plan["x"].projected_start, at(4, 0)) and close(plan["x"].finish_p50, at(4, 10))


def test_events_without_an_occurrence_hold_nobody_up() -> None:
    graph = build_graph(["a", "b"], {"b": ["a"]}, {})
    plan = project(graph, {"b": occurrence("b", W, const(10))}, NOW)
    assert list(plan) == ["b"] and close(plan["b"].finish_p50, at(1, 10))
    assert plan.critical_path("b") == ("b",)


def test_a_cycle_is_refused_with_its_names() -> None:
    with pytest.raises(CycleError, match="cycle") as err:
        build_graph(["a", "b"], {"a": ["b"], "b": ["a"]}, {})
    assert "a" in str(err.value) and "b" in str(err.value)


def test_edges_to_unknown_events_are_ignored() -> None:
    graph = build_graph(["a"], {"a": ["ghost"]}, {"ghost": ["a"]})
    assert graph.order == ("a",) and graph.waits_for == {}
