"""W7: how the thresholds were chosen. The stage's probabilities of every DAG night (each
recompute, as the engine had it) are judged again by the same rules
(engine/foresight/rules.py `judge`) with other thresholds, and each set is scored on what
the issue asks: false projected_late pages per 30 normal nights, at_risk on met deadlines,
slow-step misses paged >= 60 min ahead, every miss paged before its deadline, and pages
per miss (opens and pages again, plus one escalation when projected_late was open 30 min
before the night's end). The notifier is not replayed: the table compares thresholds; the
rows above it are what was really received."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Final

from bench import dag
from bench.dag_engine import NightRecord, Point
from bench.stats import Results
from evman.engine.foresight.estimate import estimate
from evman.engine.foresight.projection import Projection
from evman.engine.foresight.rules import PROJECTED_LATE, THRESHOLDS, Thresholds, Watch, judge
from evman.engine.model import RunState

ESCALATE_AFTER_S: Final = 1800.0
CANDIDATES: Final = (
    Thresholds(0.3, 0.15, 0.7, 0.5, 300.0),
    Thresholds(0.5, 0.25, 0.8, 0.5, 300.0),
    Thresholds(0.5, 0.25, 0.8, 0.5, 600.0),
    Thresholds(0.6, 0.3, 0.9, 0.7, 600.0),
    THRESHOLDS,
    Thresholds(0.7, 0.4, 0.9, 0.7, 900.0),
    Thresholds(0.8, 0.5, 0.95, 0.8, 600.0),
)
_EST: Final = estimate([])


@dataclass(frozen=True)
class Score:
    false_per_30: float
    at_risk_pct: float
    slow_ahead_pct: float
    paged_pct: float
    pages_median: float


def pages(points: list[Point], deadline: float, end: float, rules: Thresholds) -> list[tuple[float, str]]:
    """(time, kind) of every page the rules would send for one deadline's night."""
    watch: Watch | None = None
    out: list[tuple[float, str]] = []
    late_since: float | None = None
    for point in points:
        state = RunState.SUCCEEDED if point.finished else RunState.WAITING
        row = Projection(
            "x", state, False, _EST, None, point.p50_s, point.p50_s, deadline, None, None, 0, point.probability
        )
        blocker = "blocked" if point.p50_s is None else None
        verdicts, watch = judge(row, "night", watch, point.at_s, blocker, news=point.news, rules=rules)
        for v in verdicts:
            if v.action != "resolve":
                out.append((point.at_s, v.kind))
            if v.kind == PROJECTED_LATE:
                late_since = point.at_s if v.action == "open" else None if v.action == "resolve" else late_since
    if late_since is not None and late_since + ESCALATE_AFTER_S <= end:
        out.append((late_since + ESCALATE_AFTER_S, "escalation"))
    return out


def score(records: list[NightRecord], rules: Thresholds) -> Score:
    false = risky = met = 0
    slow = slow_ahead = missed = paged = 0
    counts: list[int] = []
    normal = sum(r.plan.kind == "normal" for r in records)
    for rec in records:
        end = max(rec.deadlines.values()) + 1800
        for event in dag.DEADLINES:
            found = pages(rec.trajectory.get(event, []), rec.deadlines[event], end, rules)
            before = [t for t, _ in found if t <= rec.deadlines[event]]
            if rec.missed(event):
                missed += 1
                paged += bool(before)
                counts.append(len(found))
                if rec.plan.kind == "slow":
                    slow += 1
                    slow_ahead += bool(before) and rec.deadlines[event] - min(before) >= 3600
            elif rec.plan.kind == "normal":
                met += 1
                false += sum(k == PROJECTED_LATE for _, k in found)
                risky += any(k == "at_risk" for _, k in found)
    return Score(
        30 * false / normal if normal else 0.0,
        100 * risky / met if met else 0.0,
        100 * slow_ahead / slow if slow else 0.0,
        100 * paged / missed if missed else 0.0,
        statistics.median(counts) if counts else 0.0,
    )


def rows(results: Results, records: list[NightRecord]) -> None:
    for rules in CANDIDATES:
        s = score(records, rules)
        chosen = " (chosen)" if rules == THRESHOLDS else ""
        results.note(
            f"W7 thresholds at_risk {rules.at_risk_open:.0%}/{rules.at_risk_clear:.0%}, projected_late "
            f"{rules.late_open:.0%}/{rules.late_clear:.0%}, hold {rules.hold_s / 60:.0f} min{chosen}: "
            f"false projected_late {s.false_per_30:.1f} per 30 normal nights, at_risk on {s.at_risk_pct:.0f} % of "
            f"met deadlines, slow misses >= 60 min ahead {s.slow_ahead_pct:.0f} %, misses paged {s.paged_pct:.0f} %, "
            f"pages per miss {s.pages_median:g}"
        )
