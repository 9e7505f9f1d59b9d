"""W7 on the DAG (bench/dag.py, bench/dag_engine.py): per fault kind, how early misses were
paged, the false pages and at_risk on normal nights, calibration, pages per incident."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Final

from bench import dag, dag_oracle
from bench.dag_engine import HORIZONS_H, NightRecord
from bench.stats import Results
from evman.engine.foresight.rules import THRESHOLDS

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


CLEAR: Final = (
    f"clear (true odds >= {THRESHOLDS.late_open:.0%} for {THRESHOLDS.hold_s / 60:.0f} min before the deadline, "
    "from the engine's return)"
)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a proportion, in %."""
    if not n:
        return 0.0, 100.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def first_page(record: NightRecord, event: str) -> float | None:
    """When the first foresight page about `event` went out before its deadline."""
    times = [p.at_s for p in record.pages_of(event) if p.at_s <= record.deadlines[event]]
    return min(times, default=None)


def rows(results: Results, records: list[NightRecord], shape: dag.Shape | None = None) -> None:
    for kind in dag.FAULTS:
        _kind_rows(results, records, kind, shape or dag.shape())
    _independence(results, records)
    _normal_rows(results, records)
    for horizon in HORIZONS_H:
        _calibration(results, records, horizon)


def _independence(results: Results, records: list[NightRecord]) -> None:
    tangled = [rec for rec in records if rec.tangled]
    what = "; ".join(f"{rec.plan.start:%m-%d} {rec.plan.kind}: {', '.join(rec.tangled)}" for rec in tangled[:5])
    results.target(
        "W7",
        "DAG nights independent: no step ran before what it waits for had succeeded that night",
        f"{len(tangled)} of {len(records)} nights" + (f" ({what})" if what else ""),
        bool(records) and not tangled,
    )


def _kind_rows(results: Results, records: list[NightRecord], kind: str, shape: dag.Shape) -> None:
    r = results
    every = misses(records, kind)
    nights = sum(rec.plan.kind == kind for rec in records)
    found, others = every, []
    if kind == "down":  # only what a forecast with the true odds would page is promised a page
        likely = [dag_oracle.clear(rec, e, shape, THRESHOLDS.late_open) for rec, e in every]
        _at_risk_bar(results, every, shape)
        found = [m for m, yes in zip(every, likely, strict=True) if yes]
        others = [m for m, yes in zip(every, likely, strict=True) if not yes]
        r.add("W7", f"{SYSTEM}, {kind}", "misses the outage made clear", "misses", len(found))
        if others:
            paged_others = sum(first_page(rec, e) is not None for rec, e in others)
            results.note(
                f"W7 DAG down: {len(others)} miss(es) not {CLEAR} (true odds when the engine came back "
                f"{', '.join(f'{100 * _odds(rec, e, shape):.0f} %' for rec, e in others)}), "
                f"{paged_others} paged before the deadline"
            )
    leads = [None if (at := first_page(rec, e)) is None else (rec.deadlines[e] - at) / 60 for rec, e in found]
    paged = [lead for lead in leads if lead is not None]
    ahead = sum(lead >= LEAD_MIN for lead in paged)
    share_ahead = 100.0 * ahead / len(found) if found else 0.0
    share_paged = 100.0 * len(paged) / len(found) if found else 0.0
    system = f"{SYSTEM}, {kind}"
    r.add("W7", system, f"misses ({nights} nights, 2 deadlines each)", "misses", float(len(every)))
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
        which = f"every miss {CLEAR}" if kind == "down" else "every miss"
        r.target(
            "W7",
            f"{kind}: {which} paged before the deadline",
            f"{share_paged:.0f} % ({len(paged)} of {len(found)}; {ahead} >= {LEAD_MIN:.0f} min ahead{spread})"
            + (f"; {len(others)} other(s) not clear, not counted" if others else ""),
            bool(found) and len(paged) == len(found),
        )
    med = statistics.median(pages) if pages else None
    r.target(
        "W7",
        f"{kind}: pages per missed deadline (nobody acknowledges), median <= {PAGES_GOAL:g}",
        "no misses" if med is None else f"median {med:g}, max {max(pages)} ({len(pages)} misses)",
        med is not None and med <= PAGES_GOAL,
    )


def _at_risk_bar(results: Results, found: list[tuple[NightRecord, str]], shape: dag.Shape) -> None:
    """The down misses whose true odds reached at_risk's bar for the hold: how many were paged."""
    bar = THRESHOLDS.at_risk_open
    likely = [(rec, e) for rec, e in found if dag_oracle.clear(rec, e, shape, bar)]
    paged = sum(first_page(rec, e) is not None for rec, e in likely)
    results.note(
        f"W7 DAG down: {len(likely)} miss(es) with true odds >= {bar:.0%} for {THRESHOLDS.hold_s / 60:.0f} min before "
        f"the deadline, from the engine's return: {paged} paged before it"
    )


def _odds(rec: NightRecord, event: str, shape: dag.Shape) -> float:
    back = dag_oracle.back_at(rec)
    return 1.0 if back is None else dag_oracle.miss_odds(rec, shape, back)[event]


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
    """(% actual <= p50, % actual <= p90, forecasts judged, finished already) at `event_horizon` h.
    The two deadlines of a night are forecast together (notify follows publish), so the
    forecasts are not all independent: the intervals printed beside them are a little narrow."""
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
    low50, high50 = wilson(round(p50 * n / 100), n)
    low90, high90 = wilson(round(p90 * n / 100), n)
    r.target(
        "W7",
        f"calibration {hours} h before, normal nights: actual <= p50 in {P50_GOAL[0]:.0f}-{P50_GOAL[1]:.0f} %",
        f"{p50:.1f} % of {n} forecasts{_few(n)} (95 % interval {low50:.0f}-{high50:.0f} %; {done} already finished, "
        "not counted)",
        calibrated(p50, n, P50_GOAL),
    )
    r.target(
        "W7",
        f"calibration {hours} h before, normal nights: actual <= p90 in {P90_GOAL[0]:.0f}-{P90_GOAL[1]:.0f} %",
        f"{p90:.1f} % of {n}{_few(n)} (95 % interval {low90:.0f}-{high90:.0f} %; all nights pooled: {a90:.0f} % of {an})",
        calibrated(p90, n, P90_GOAL),
    )


MIN_FORECASTS: Final = 100
"""Fewer forecasts than this judge nothing (a calibrated model fails a 10-point band on 36
forecasts one time in four): the row fails and says so."""


def _few(n: int) -> str:
    return f", too few to judge (< {MIN_FORECASTS})" if n < MIN_FORECASTS else ""


def calibrated(share: float, n: int, goal: tuple[float, float]) -> bool:
    """The row's verdict: the share (%) inside the goal, on at least MIN_FORECASTS forecasts."""
    return n >= MIN_FORECASTS and goal[0] <= share <= goal[1]
