"""W7 on the DAG (bench/dag.py, bench/dag_engine.py): per fault kind, how early misses were
paged, the false pages and at_risk on normal nights, calibration, pages per incident."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Final

from bench import dag
from bench.dag_engine import HORIZONS_H, NightRecord
from bench.stats import Results

SYSTEM: Final = "evman foresight, DAG"
LEAD_MIN: Final = 60.0
LEAD_SHARE_GOAL: Final = 90.0
FALSE_GOAL_PER_30: Final = 1.0
AT_RISK_GOAL: Final = 10.0
P50_GOAL: Final = (40.0, 60.0)
P90_GOAL: Final = (85.0, 95.0)
PAGES_GOAL: Final = 3.0
EARLY_KINDS: Final = ("slow",)
"""Kinds whose misses must be paged >= LEAD_MIN ahead; the others must be paged before the deadline."""


def misses(records: Iterable[NightRecord], kind: str) -> list[tuple[NightRecord, str]]:
    return [(r, e) for r in records if r.plan.kind == kind for e in dag.DEADLINES if r.missed(e)]


def first_page(record: NightRecord, event: str) -> float | None:
    """When the first foresight page about `event` went out before its deadline."""
    times = [p.at_s for p in record.pages_of(event) if p.at_s <= record.deadlines[event]]
    return min(times, default=None)


def rows(results: Results, records: list[NightRecord]) -> None:
    for kind in dag.FAULTS:
        _kind_rows(results, records, kind)
    _normal_rows(results, records)
    for horizon in HORIZONS_H:
        _calibration(results, records, horizon)


def _kind_rows(results: Results, records: list[NightRecord], kind: str) -> None:
    r = results
    found = misses(records, kind)
    nights = sum(rec.plan.kind == kind for rec in records)
    leads = [None if (at := first_page(rec, e)) is None else (rec.deadlines[e] - at) / 60 for rec, e in found]
    paged = [lead for lead in leads if lead is not None]
    ahead = sum(lead >= LEAD_MIN for lead in paged)
    share_ahead = 100.0 * ahead / len(found) if found else 0.0
    share_paged = 100.0 * len(paged) / len(found) if found else 0.0
    system = f"{SYSTEM}, {kind}"
    r.add("W7", system, f"misses ({nights} nights, 2 deadlines each)", "misses", float(len(found)))
    r.add("W7", system, f"misses paged >= {LEAD_MIN:.0f} min ahead", "%", share_ahead)
    r.add("W7", system, "misses paged before the deadline", "%", share_paged)
    if paged:
        r.add("W7", system, "lead of the first page, median", "min", statistics.median(paged))
    pages = [len(rec.pages_of(e)) for rec, e in found]
    if pages:
        r.add("W7", system, "pages per missed deadline, median", "pages", statistics.median(pages))
        r.add("W7", system, "pages per missed deadline, max", "pages", float(max(pages)))
    spread = f"; leads {min(paged):.0f}-{max(paged):.0f} min" if paged else ""
    if kind in EARLY_KINDS:
        r.target(
            "W7",
            f"{kind}: misses paged >= {LEAD_MIN:.0f} min ahead >= {LEAD_SHARE_GOAL:.0f} %",
            f"{share_ahead:.0f} % ({ahead} of {len(found)}{spread})",
            bool(found) and share_ahead >= LEAD_SHARE_GOAL,
        )
    else:
        r.target(
            "W7",
            f"{kind}: every miss paged before the deadline",
            f"{share_paged:.0f} % ({len(paged)} of {len(found)}; {ahead} >= {LEAD_MIN:.0f} min ahead{spread})",
            bool(found) and len(paged) == len(found),
        )
    med = statistics.median(pages) if pages else None
    r.target(
        "W7",
        f"{kind}: pages per missed deadline (nobody acknowledges), median <= {PAGES_GOAL:g}",
        "no misses" if med is None else f"median {med:g}, max {max(pages)} ({len(pages)} misses)",
        med is not None and med <= PAGES_GOAL,
    )


def _normal_rows(results: Results, records: list[NightRecord]) -> None:
    r = results
    normal = [rec for rec in records if rec.plan.kind == "normal"]
    met = [(rec, e) for rec in normal for e in dag.DEADLINES if not rec.missed(e)]
    late = [p for rec, e in met for p in rec.pages_of(e) if p.kind == "projected_late"]
    per_30 = 30 * len(late) / len(normal) if normal else float("inf")
    system = f"{SYSTEM}, normal"
    r.add("W7", system, f"deadlines met ({len(normal)} nights, 2 each)", "deadlines", float(len(met)))
    r.add("W7", system, "projected_late pages on met deadlines, per 30 nights", "pages", per_30)
    r.target(
        "W7",
        f"false projected_late pages <= {FALSE_GOAL_PER_30:g} per 30 normal nights",
        f"{len(late)} in {len(normal)} nights ({per_30:.1f} per 30)",
        bool(normal) and per_30 <= FALSE_GOAL_PER_30,
    )
    risky = sum(any(p.kind == "at_risk" for p in rec.pages_of(e)) for rec, e in met)
    share = 100.0 * risky / len(met) if met else float("inf")
    r.add("W7", system, "at_risk on met deadlines", "%", share)
    r.target(
        "W7",
        f"at_risk on met deadlines (normal nights) <= {AT_RISK_GOAL:.0f} %",
        f"{share:.1f} % ({risky} of {len(met)})",
        bool(met) and share <= AT_RISK_GOAL,
    )
    missed = [(rec, e) for rec in normal for e in dag.DEADLINES if rec.missed(e)]
    if missed:
        caught = sum(first_page(rec, e) is not None for rec, e in missed)
        results.note(f"W7 DAG: {len(missed)} deadline(s) of normal nights missed on their own; {caught} paged before")


def coverage(records: Iterable[NightRecord], event_horizon: int) -> tuple[float, float, int, int]:
    """(% actual <= p50, % actual <= p90, forecasts judged, finished already) at `event_horizon` h."""
    below50 = below90 = count = done = 0
    for rec in records:
        for e in dag.DEADLINES:
            snap = rec.snapshots.get((e, event_horizon))
            if snap is None:
                continue
            if snap.finished:
                done += 1
                continue
            actual = rec.finishes[e]
            count += 1
            below50 += snap.p50_s is not None and actual <= snap.p50_s
            below90 += snap.p90_s is not None and actual <= snap.p90_s
    if not count:
        return 0.0, 0.0, 0, done
    return 100.0 * below50 / count, 100.0 * below90 / count, count, done


def _calibration(results: Results, records: list[NightRecord], hours: int) -> None:
    r = results
    normal = [rec for rec in records if rec.plan.kind == "normal"]
    p50, p90, n, done = coverage(normal, hours)
    system = f"{SYSTEM}, normal"
    r.add("W7", system, f"actual <= p50, {hours} h before", "%", p50)
    r.add("W7", system, f"actual <= p90, {hours} h before", "%", p90)
    for kind in dag.FAULTS:
        k50, k90, kn, _ = coverage([rec for rec in records if rec.plan.kind == kind], hours)
        if kn:
            r.add("W7", f"{SYSTEM}, {kind}", f"actual <= p50 / p90, {hours} h before", "%", k50, p99=k90)
    a50, a90, an, _ = coverage(records, hours)
    r.add("W7", f"{SYSTEM}, all nights", f"actual <= p90, {hours} h before ({an} forecasts)", "%", a90)
    r.target(
        "W7",
        f"calibration {hours} h before, normal nights: actual <= p50 in {P50_GOAL[0]:.0f}-{P50_GOAL[1]:.0f} %",
        f"{p50:.0f} % of {n} forecasts ({done} already finished, not counted)",
        n > 0 and P50_GOAL[0] <= p50 <= P50_GOAL[1],
    )
    r.target(
        "W7",
        f"calibration {hours} h before, normal nights: actual <= p90 in {P90_GOAL[0]:.0f}-{P90_GOAL[1]:.0f} %",
        f"{p90:.0f} % of {n} (all nights pooled: {a90:.0f} % of {an})",
        n > 0 and P90_GOAL[0] <= p90 <= P90_GOAL[1],
    )
