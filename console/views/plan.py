"""`evman plan`: every current occurrence's projected start and finish, slack and critical path."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from evman.engine.clock import iso
from evman.engine.foresight.projection import Projection
from evman.engine.foresight.reading import PlanView, read_tonight
from evman.engine.foresight.rules import AT_RISK_OPEN, LATE_OPEN
from evman.engine.foresight.text import clock_time, path_text, percent
from evman.engine.foresight.waits import waiting_text
from evman.engine.foresight.whatif import parse_what_ifs
from evman.engine.store import Store

KEYS = (
    "event",
    "state",
    "deadline",
    "projected_start",
    "finish_p50",
    "finish_p90",
    "slack_s",
    "confidence",
    "samples",
    "critical_path",
    "miss_probability",
    "waiting_on",
)
"""The JSON keys of a plan row, in order (DESIGN.md); keys are only ever added."""
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")


class PlanError(ValueError):
    pass


def parse_at(text: str | None, now: datetime) -> datetime:
    """--at: an ISO time (a naive one is the machine's local time), or HH:MM today, local."""
    if text is None:
        return now
    match = _CLOCK.fullmatch(text.strip())
    if match is not None and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        local = now.astimezone()
        return local.replace(hour=int(match.group(1)), minute=int(match.group(2)), second=0, microsecond=0).astimezone(
            UTC
        )
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PlanError(
            f"--at {text[:80]!r} is neither an ISO time nor HH:MM; examples: --at 01:30, --at 2026-03-10T01:30:00+00:00"
        ) from None
    return (value if value.tzinfo else value.astimezone()).astimezone(UTC)


def axis_span(view: PlanView) -> tuple[float, float]:
    """The time axis of the plan view: from now to the latest deadline or p90 finish (at
    least an hour, at most the 12 h horizon)."""
    now = view.plan.now_ts
    ends = [t for row in view.plan.values() for t in (row.deadline_ts, row.p90_ts) if t is not None and t > now]
    return now, min(now + 12 * 3600, max([now + 3600, *ends]))


def axis(row: Projection, start: float, end: float, width: int) -> str:
    """One row on the time axis: "│" now, "━" from the p50 to the p90 finish ("━…→" when
    unbounded), "┃" the deadline, "·" the rest; times past the axis sit on its last cell."""
    cells = ["·"] * width

    def at(ts: float) -> int:
        return max(0, min(width - 1, round((ts - start) / (end - start) * (width - 1))))

    if row.p50_ts is None:
        begin = at(row.start_ts) if row.start_ts is not None else 0
        cells[begin:] = ["━"] * (width - begin)
        cells[-1] = "→"
    else:
        for i in range(at(row.p50_ts), at(row.p90_ts if row.p90_ts is not None else row.p50_ts) + 1):
            cells[i] = "━"
    if row.deadline_ts is not None:
        cells[at(row.deadline_ts)] = "┃"
    cells[0] = "│"
    return "".join(cells)


def tone(row: Projection) -> str:
    """By the probability of missing the deadline, as the engine pages: bad from LATE_OPEN
    (or never finishing), warn from AT_RISK_OPEN, else ok; muted without a deadline."""
    if row.deadline_ts is None:
        return "muted"
    odds = 1.0 if row.is_unbounded or row.miss_probability is None else row.miss_probability
    return "bad" if odds >= LATE_OPEN else "warn" if odds >= AT_RISK_OPEN else "ok"


def miss_text(row: Projection) -> str:
    """ "35 %" likely to miss its deadline; "-" without one."""
    if row.deadline_ts is None:
        return "-"
    return percent(1.0 if row.is_unbounded or row.miss_probability is None else row.miss_probability)


def plan_view(store: Store, at: datetime, what_if_texts: Sequence[str] = ()) -> PlanView:
    """The plan at `at` with the --what-if changes (refused with PlanError if one is bad)."""
    tonight = read_tonight(store, at)
    try:
        changes = parse_what_ifs(what_if_texts, set(tonight.current))
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    return tonight.project(changes)


def _urgency(row: Projection) -> tuple[int, float, float, str]:
    """Most urgent first: unbounded with a deadline, then by the probability of missing it
    (then slack), then the rest by finish."""
    if row.deadline_ts is not None:
        slack = row.slack_s
        if slack is None:
            return (0, 0.0, -math.inf, row.event)
        return (1, -(row.miss_probability or 0.0), slack, row.event)
    return (2, 0.0, math.inf if row.p50_ts is None else row.p50_ts, row.event)


def ordered(view: PlanView) -> list[Projection]:
    return sorted(view.plan.values(), key=_urgency)


def row_json(view: PlanView, row: Projection) -> dict[str, Any]:
    slack = row.slack_s
    return {
        "event": row.event,
        "state": row.state,
        "deadline": iso(row.deadline),
        "projected_start": iso(row.projected_start),
        "finish_p50": iso(row.finish_p50),
        "finish_p90": iso(row.finish_p90),
        "slack_s": None if slack is None else round(slack, 3),
        "confidence": row.estimate.confidence,
        "samples": row.estimate.samples,
        "critical_path": list(view.plan.critical_path(row.event)),
        "miss_probability": None if row.miss_probability is None else round(row.miss_probability, 4),
        "waiting_on": waiting_on(view, row.event),
    }


def waiting_on(view: PlanView, event: str, zone: tzinfo | None = None, *, shown: bool = False) -> str | None:
    """What its waiting occurrence waits for besides the clock and its upstreams (a pool's
    holders and line, a pending approval) and the slack it loses to them, e.g. "pool lock:
    behind run 5 extract (p50 ends 03:10); 58m of slack lost"; None: nothing of that. Times
    in the event's own zone (as its waiting_reason), or `shown` in `zone` (None: the machine's)."""
    now_ts = view.plan.now_ts
    timezone = view.current[event].timezone

    def at(ts: float) -> str:
        return clock(ts, zone, now_ts) if shown else clock_time(ts, timezone, now_ts)

    return waiting_text(view.plan.waiting(event), at)


def plan_json(view: PlanView) -> list[dict[str, Any]]:
    return [row_json(view, row) for row in ordered(view)]


def clock(ts: float | None, zone: tzinfo | None, now_ts: float) -> str:
    """HH:MM local; with the date when it is not within a day of now; "-" for none."""
    if ts is None:
        return "-"
    local = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    return local.strftime("%H:%M" if abs(ts - now_ts) < 86400 else "%m-%d %H:%M")


def slack_text(seconds: float | None, *, bounded: bool = True) -> str:
    """ "+1h05m", "-12m", "0m"; "never" for an unbounded path with a deadline."""
    if not bounded:
        return "never"
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}h{rest:02d}m" if hours else f"{sign}{rest}m"


def render_plan(view: PlanView, zone: tzinfo | None = None) -> str:
    """The plan as a text table, most urgent first, times in `zone` (default: the machine's)."""
    now_ts = view.plan.now_ts
    header = (
        f"plan at {datetime.fromtimestamp(now_ts, UTC).astimezone(zone):%Y-%m-%d %H:%M %Z}; "
        f"at_risk from {percent(AT_RISK_OPEN)} likely to miss, projected_late from {percent(LATE_OPEN)}; "
        "times are local"
    )
    rows = []
    notes = []
    for row in ordered(view):
        waits = waiting_on(view, row.event, zone, shown=True)
        if waits is not None:
            notes.append(f"  {row.event}: {waits}")
        bounded = not (row.is_unbounded and row.deadline_ts is not None)
        rows.append(
            [
                row.event,
                row.state + (" (held)" if row.held else ""),
                clock(row.deadline_ts, zone, now_ts),
                clock(row.start_ts, zone, now_ts),
                clock(row.p50_ts, zone, now_ts),
                clock(row.p90_ts, zone, now_ts),
                slack_text(row.slack_s, bounded=bounded),
                miss_text(row),
                f"{row.estimate.confidence} ({row.estimate.samples})",
                path_text(view.plan, row.event),
            ]
        )
    heads = ["EVENT", "STATE", "DEADLINE", "START", "P50", "P90", "SLACK", "MISS", "CONFIDENCE", "CRITICAL PATH"]
    if not rows:
        return header + "\nnothing falls due within 12 hours of then, and nothing is running"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = [header, "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if notes:
        lines += ["", "waiting on (slack lost to pools and approvals):", *notes]
    return "\n".join(lines)


def slack_cells(view: PlanView) -> dict[str, tuple[str, str]]:
    """The main table's slack column: (text, tone) for each event with a deadline, e.g.
    ("+12m 8 %", "ok") (read with read_tonight(scoped=True): only the events a deadline
    depends on)."""
    return {
        row.event: (f"{slack_text(row.slack_s, bounded=not row.is_unbounded)} {miss_text(row)}", tone(row))
        for row in (view.plan[name] for name in view.deadlines)
    }
