"""Each event's run time as a distribution: a fixed, sorted set of SAMPLES run times and the
tail beyond them.

- With enough history (MIN_SAMPLES successes), the set is the history smoothed in log space:
  every past run time contributes SAMPLES / n points spread around it by a normal kernel
  whose width follows Silverman's rule (a kernel density estimate of log run time), shrunk
  towards the mean so that the set has the history's own variance (the smoothed bootstrap
  with variance correction: the kernel fills the gaps between past runs without widening
  them). Skew is kept (log space), and the kernel gives a tail beyond the slowest run
  seen. A run far out of line with the others (`typical`) is left out: the night it
  belongs to had an incident, which the conditioning below catches when it happens again.
- With thin history, a lognormal whose median is the estimate's p50 and whose 90th
  percentile is its p90 (the fallbacks of engine/foresight/estimate.py).
- A running step is conditioned on how long it has run: its remaining time is drawn from
  the points above its elapsed time; once fewer than TAIL_MIN are left, from a Pareto tail
  fitted to the top of the set (the median of what is left then grows in proportion to
  the elapsed time, so the p90 widens while a step overruns). The further past the set, the
  less its fit is trusted: the tail's index falls with the square of how far past the set's
  top the step has run (TAIL_DECAY), down to 1, where the odds are even that it runs as
  long again as it has run so far.

The points are drawn with Latin hypercube sampling: each event's set is used in its own
fixed random order (seeded by its name and occurrence), so that one recompute is a pure
function of the facts: two recomputes of the same facts give the same probabilities, and
the probabilities move smoothly with the clock instead of jittering."""

from __future__ import annotations

import math
import zlib
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from evman.engine.foresight.estimate import HISTORY, MIN_SAMPLES, Estimate

Array = npt.NDArray[np.float64]

SAMPLES: Final = 128
"""Points per event. A probability is known to 1/128 (0.8 %); the sum of a chain of a few
events, Latin hypercube sampled, to about 2.5 percentage points at its 90th percentile."""
TAIL_MIN: Final = 8
"""A running step past all but this many of its points follows the fitted tail."""
OUT_OF_LINE: Final = 3.5
OUT_OF_LINE_SHARE: Final = 0.1
TAIL_DECAY: Final = 2.0
"""alpha(elapsed) = max(1, alpha0 * (e0 / elapsed) ** TAIL_DECAY), e0 the elapsed time where the tail takes over."""
K50: Final = math.ceil(0.5 * SAMPLES) - 1
K90: Final = math.ceil(0.9 * SAMPLES) - 1
"""Nearest-rank positions of p50 and p90 in a sorted set of SAMPLES points."""
_Z90: Final = NormalDist().inv_cdf(0.9)
_MIN_S: Final = 0.001
_NORMAL: Final = np.array([NormalDist().inv_cdf((k + 0.5) / SAMPLES) for k in range(SAMPLES)])
"""Normal quantiles at the midpoints of SAMPLES equal strata, ascending."""
_KERNEL: Final = np.random.default_rng(20).permutation(_NORMAL)
"""The kernel offsets, spread over the history values (each value gets points from every part of the normal)."""
_SPREAD: Final = [np.zeros(SAMPLES, dtype=np.intp), *((np.arange(SAMPLES) * n) // SAMPLES for n in range(1, 41))]
"""n -> which of n history values each point is spread around (SAMPLES / n points each)."""
_POOL: Final = np.random.default_rng(21).permuted(np.tile(np.arange(SAMPLES, dtype=np.intp), (1024, 1)), axis=1)
"""1,024 random orders; an event's order composes two of them (a million possible orders)."""


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default), of a sorted list."""
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def bandwidth(logs: list[float]) -> float:
    """Silverman's rule of thumb for a normal kernel over `logs` (log run times, sorted).
    Plain Python: twenty values are summarised faster than numpy can be called."""
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1)) if n > 1 else 0.0
    iqr = _quantile(logs, 0.75) - _quantile(logs, 0.25)
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    return float(0.9 * spread * n ** (-0.2))


def typical(logs: list[float]) -> list[float]:
    """The sorted log run times without the few far out of line on the slow side: a modified
    z-score (Iglewicz and Hoaglin: 0.6745 * (x - median) / MAD) above OUT_OF_LINE. Such a run
    is an incident (a stuck lock, a slow disk), not the step's variability: counted in, one in
    twenty would make every night look 5 % likely to be that slow. Left out only while they
    are at most OUT_OF_LINE_SHARE of the history; more than that is the step's new normal."""
    median = _quantile(logs, 0.5)
    mad = _quantile(sorted(abs(x - median) for x in logs), 0.5)
    if mad <= 0:
        return logs
    kept = [x for x in logs if 0.6745 * (x - median) / mad <= OUT_OF_LINE]
    return logs if len(logs) - len(kept) > OUT_OF_LINE_SHARE * len(logs) else kept


def points(est: Estimate, factor: float = 1.0) -> Array:
    """The sorted SAMPLES run times (seconds) of an event with estimate `est`, times `factor`."""
    if est.confidence == HISTORY and len(est.history) >= MIN_SAMPLES:
        logs = typical(sorted(math.log(max(x, _MIN_S)) for x in est.history))
        n = len(logs)
        mean = sum(logs) / n
        var = sum((x - mean) ** 2 for x in logs) / n
        h = bandwidth(logs)
        shrink = 1.0 / math.sqrt(1.0 + h * h / var) if var > 0 else 1.0
        centre = np.asarray(logs)[_SPREAD[n]]
        out = np.exp(mean + (centre - mean + h * _KERNEL) * shrink)
    else:
        p50 = max(est.p50_s, _MIN_S)
        sigma = math.log(max(est.p90_s, p50) / p50) / _Z90
        out = p50 * np.exp(sigma * _NORMAL)
    out *= factor
    out.sort()
    return out


def tail_alpha(sorted_points: Array) -> float:
    """The Pareto index of the tail beyond the set: continuous with the set where it takes
    over, i.e. at elapsed e0 (TAIL_MIN points left) the median of what is left is the same
    either way: e0 * (2 ** (1 / alpha) - 1) = median(top points) - e0. Kept within [1.5, 50]."""
    top = sorted_points[SAMPLES - TAIL_MIN :].tolist()
    e0 = top[0]
    if e0 <= 0:
        return 50.0
    left = _quantile(top, 0.5) - e0
    if left <= 0:
        return 50.0
    return min(50.0, max(1.5, math.log(2) / math.log1p(left / e0)))


def order(event: str, seed: int) -> npt.NDArray[np.intp]:
    """The event's fixed random order of its points (its column of the Latin hypercube)."""
    key = zlib.crc32(event.encode()) ^ (seed * 2654435761 & 0xFFFFFFFF)
    found: npt.NDArray[np.intp] = _POOL[key & 1023][_POOL[(key >> 10) & 1023]]
    return found


class Model:
    """One event's points, in its sampling order, with what conditioning needs."""

    __slots__ = ("draw", "sorted", "rank", "alpha", "tail_from")

    def __init__(self, event: str, est: Estimate, factor: float, seed: int) -> None:
        self.sorted = points(est, factor)
        perm = order(event, seed)
        self.draw = self.sorted[perm]
        """The run time of each sample (the points in this event's order)."""
        self.rank = perm.astype(np.int32)
        """Each sample's rank in the set: what a conditioned draw keeps."""
        self.alpha = tail_alpha(self.sorted)
        """The Pareto index of the tail where it takes over."""
        self.tail_from = float(self.sorted[SAMPLES - TAIL_MIN])
        """The elapsed time where it takes over (e0)."""


def tail_left(rank: npt.NDArray[np.int32], elapsed: Array, alpha0: Array, e0: Array) -> Array:
    """Remaining time of samples of rank `rank` (one row per step) past their set: Pareto
    quantiles at the sample's place, scaled by the elapsed time, alpha decaying with it."""
    alpha = np.maximum(1.0, alpha0 * (e0 / np.maximum(elapsed, 1e-9)) ** TAIL_DECAY)[:, None]
    q = (2.0 * rank + 1.0) / (2.0 * SAMPLES)
    return ((1.0 - q) ** (-1.0 / alpha) - 1.0) * elapsed[:, None]
