"""W7's calibration rows judge enough forecasts and can fail: forecasts drawn from the true
distribution pass; the same with p90 replaced by p50, or with the spread halved, fail; too few
forecasts fail whatever they say. A night whose step ran on another night's work is found;
the true odds of a miss (bench/dag_oracle.py) read 0, about a half, and 1 where they must."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from bench import dag, dag_oracle
from bench.dag_engine import NightRecord, Snapshot
from bench.w7_dag import MIN_FORECASTS, P50_GOAL, P90_GOAL, calibrated, coverage, wilson

Z90 = 1.2815515655446004


def forecasts(n: int, p90_z: float | None = Z90, sigma: float = 0.3, seed: int = 7) -> list[NightRecord]:
    """`n` normal nights, each deadline's actual finish lognormal around its forecast p50
    (3 h before); p90 at `p90_z` sigmas (None: p90 = p50)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec = NightRecord(dag.NightPlan(dag.FIRST_NIGHT + timedelta(days=i), "normal", {}))
        for event in dag.DEADLINES:
            p50 = 10_000.0
            p90 = p50 if p90_z is None else p50 * math.exp(p90_z * sigma)
            rec.finishes[event] = p50 * math.exp(rng.gauss(0.0, sigma))
            rec.deadlines[event] = 20_000.0
            rec.snapshots[(event, 3)] = Snapshot(0.0, p50, p90, 0.5, False)
        out.append(rec)
    return out


def verdicts(records: list[NightRecord]) -> tuple[bool, bool, int]:
    p50, p90, n, _ = coverage(records, 3)
    return calibrated(p50, n, P50_GOAL), calibrated(p90, n, P90_GOAL), n


def test_calibrated_forecasts_pass() -> None:
    assert verdicts(forecasts(400)) == (True, True, 800)


def test_p90_replaced_by_p50_fails() -> None:
    ok50, ok90, _ = verdicts(forecasts(400, p90_z=None))
    assert ok50 and not ok90


def test_halved_spread_fails() -> None:
    ok50, ok90, _ = verdicts(forecasts(400, p90_z=Z90 / 2))
    assert ok50 and not ok90
    p90 = coverage(forecasts(400, p90_z=Z90 / 2), 3)[1]
    assert 68 < p90 < 80  # Phi(0.64) = 74 %


def test_too_few_forecasts_judge_nothing() -> None:
    assert not calibrated(50.0, MIN_FORECASTS - 1, P50_GOAL)
    assert calibrated(50.0, MIN_FORECASTS, P50_GOAL)


def test_wilson_interval() -> None:
    low, high = wilson(45, 100)
    assert 35.0 < low < 36.0 and 54.5 < high < 55.5
    assert wilson(0, 0) == (0.0, 100.0)


def night_steps(start: float) -> dict[str, tuple[float, float]]:
    ends = dag.ends_of({s.name: s.median_min * 60 for s in dag.STEPS})
    took = {s.name: s.median_min * 60 for s in dag.STEPS}
    return {name: (start + end - took[name], start + end) for name, end in ends.items()}


def test_a_step_on_another_nights_work_is_tangled() -> None:
    rec = NightRecord(dag.NightPlan(dag.FIRST_NIGHT, "normal", {}))
    rec.steps = night_steps(dag.FIRST_NIGHT.timestamp())
    assert rec.tangled == []
    began, ended = rec.steps["publish"]
    rec.steps["publish"] = (rec.steps["enrich"][1], rec.steps["enrich"][1] + ended - began)  # before report
    assert rec.tangled == ["publish"]
    del rec.steps["report"]
    assert "publish" in rec.tangled


def test_true_odds_of_a_miss() -> None:
    start = dag.FIRST_NIGHT.timestamp()
    shape = dag.shape()
    rec = NightRecord(dag.NightPlan(dag.FIRST_NIGHT, "down", {}))
    rec.steps = night_steps(start)
    report_end = rec.steps["report"][1]
    del rec.steps["publish"], rec.steps["notify"]
    rec.deadlines = {"publish": report_end + 30 * 60, "notify": report_end + 600 * 60}
    odds = dag_oracle.miss_odds(rec, shape, report_end)
    assert 0.4 < odds["publish"] < 0.6  # publish (median 30 min) has just its median left
    assert odds["notify"] == 0.0
    rec.deadlines["publish"] = report_end - 60
    assert dag_oracle.miss_odds(rec, shape, report_end)["publish"] == 1.0


def test_a_miss_is_clear_only_when_its_odds_held_past_the_bar_before_the_deadline() -> None:
    start = dag.FIRST_NIGHT.timestamp()
    shape = dag.shape()
    rec = NightRecord(dag.NightPlan(dag.FIRST_NIGHT, "down", {}, down_at_s=3600.0))
    rec.steps = night_steps(start)
    back = dag_oracle.back_at(rec)
    assert back == start + 3600 + dag.DOWN_S
    report_end = rec.steps["report"][1]
    rec.deadlines = {"publish": report_end + 30 * 60, "notify": report_end + 600 * 60}
    assert not dag_oracle.clear(rec, "publish", shape, 0.9)  # a coin flip until publish runs long
    rec.deadlines["publish"] = report_end - 3600  # impossible once report runs to its median
    assert dag_oracle.clear(rec, "publish", shape, 0.9)
    assert not dag_oracle.clear(rec, "notify", shape, 0.7)
