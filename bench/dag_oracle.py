"""The true odds of a DAG night's miss, from the distributions the nights' run times are drawn
from (bench/dag.py), not from evman's model: for a night with the engine down, how likely each
deadline's miss was when the engine came back, given what was known then (which steps had
ended, which were running and for how long, which had not started).

Used to tell the misses the outage made clear from the coin flips: a miss is clear when, from
the engine's return on, its true odds stayed at least projected_late's threshold (90 %) for
the rules' hold and the hold ended before the deadline. A last step running 65 % over its
median after the engine was back with 45 min of slack left is not: its odds reach 70 % two
minutes before the deadline. The bar is projected_late's, not at_risk's 70 %: a forecast
that is calibrated over many nights is still off by a few points on one night, and a miss
whose true odds touched 70-80 % for 12 minutes is a coin flip for any forecast judged at
70 %; the count at at_risk's bar is printed beside it."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from bench import dag
from bench.dag_engine import NightRecord
from evman.engine.foresight.rules import THRESHOLDS, Thresholds

SAMPLES: Final = 4000
STEP_S: Final = 120.0
"""How often clear() asks the odds."""


def draws(rng: np.random.Generator, step: dag.Step, shape: dag.Shape, n: int) -> np.ndarray:
    """`n` run times of `step` as dag.draw makes them (lognormal, 3 % outliers 1.5-2.5x)."""
    took = np.exp(rng.normal(math.log(step.median_min * 60), shape.sigmas[step.name], n))
    outlier = rng.random(n) < dag.OUTLIER_SHARE
    took[outlier] *= rng.uniform(1.5, 2.5, int(outlier.sum()))
    return took


def draws_past(rng: np.random.Generator, step: dag.Step, shape: dag.Shape, n: int, elapsed: float) -> np.ndarray:
    """`n` run times of `step` given that it has run `elapsed` seconds already."""
    kept = np.zeros(0)
    for _ in range(50):
        got = draws(rng, step, shape, 20 * n)
        kept = np.concatenate([kept, got[got > elapsed]])
        if len(kept) >= n:
            return kept[:n]
    return np.concatenate([kept, np.full(n - len(kept), elapsed)])[:n]  # far past every draw: ends now


def miss_odds(record: NightRecord, shape: dag.Shape, at_s: float, seed: int = 0) -> dict[str, float]:
    """deadline event -> the probability, at `at_s`, that it finishes after its deadline."""
    rng = np.random.default_rng(seed)
    finish: dict[str, np.ndarray] = {}
    for step in dag.STEPS:
        began, ended = record.steps.get(step.name, (math.inf, math.inf))
        if ended <= at_s:
            finish[step.name] = np.full(SAMPLES, ended)
        elif began <= at_s:
            finish[step.name] = began + draws_past(rng, step, shape, SAMPLES, at_s - began)
        else:
            start = np.full(SAMPLES, at_s)
            for up in step.after:
                start = np.maximum(start, finish[up])
            finish[step.name] = start + draws(rng, step, shape, SAMPLES)
    return {e: float(np.mean(finish[e] > record.deadlines[e])) for e in dag.DEADLINES}


def back_at(record: NightRecord) -> float | None:
    """When the engine came back (epoch s), for a night it was down."""
    down = record.plan.down_at_s
    return None if down is None else record.plan.start.timestamp() + down + dag.DOWN_S


def clear(record: NightRecord, event: str, shape: dag.Shape, bar: float, rules: Thresholds = THRESHOLDS) -> bool:
    """Whether the true odds of `event`'s miss stayed >= `bar` for the rules' hold before the
    deadline, from the engine's return (from the night's start if it never went down)."""
    t = back_at(record) or record.plan.start.timestamp()
    deadline, since = record.deadlines[event], None
    while t < deadline:
        if miss_odds(record, shape, t, seed=int(t))[event] >= bar:
            since = t if since is None else since
            if t - since >= rules.hold_s:
                return True
        else:
            since = None
        t += STEP_S
    return False
