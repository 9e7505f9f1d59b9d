"""When foresight pages: at_risk and projected_late opened, paged again, resolved. Pure rules.

- at_risk: the p90 finish is past deadline - margin. projected_late: the p50 finish is past
  the deadline, or the path is unbounded. at_risk is not opened while projected_late is open or
  opening (it would say less, later).
- One alert per (event, occurrence, kind). It pages again only when its slack has worsened
  by another margin since its last page (and it is not acknowledged).
- It resolves when two evaluations in a row find it on time, when the event finishes in
  time, when the event's next occurrence takes over, or when the event no longer has a deadline.
- Once the deadline has passed, nothing opens or pages again: the miss is no longer a
  forecast (overdue and missed say it), and a late finish is history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from evman.engine.foresight.projection import Projection
from evman.engine.model import AlertKind, RunState

AT_RISK: Final = AlertKind.AT_RISK
PROJECTED_LATE: Final = AlertKind.PROJECTED_LATE
KINDS: Final = (PROJECTED_LATE, AT_RISK)
"""In the order they are judged: projected_late first, so that it can hold at_risk back."""
ON_TIME_TO_RESOLVE: Final = 2
MIN_REPAGE_STEP_S: Final = 60.0
"""A margin of 0 would page again at every evaluation of a worsening slack."""
UNBOUNDED_SLACK: Final = -math.inf


@dataclass(frozen=True)
class Standing:
    """An open foresight alert of one event, as the rules remember it between evaluations."""

    kind: str
    occurrence: str
    """Which occurrence it is about (the stage uses its deadline, as ISO text)."""
    paged_slack_s: float
    """The kind's slack at its last page; -inf when the path was unbounded."""
    on_time: int = 0
    """Evaluations in a row that found it on time."""
    is_acknowledged: bool = False


@dataclass(frozen=True)
class Verdict:
    kind: str
    event: str
    action: str
    """"open" (a new alert, paged), "page" (paged again: the slack worsened), "resolve"."""
    slack_s: float
    """The kind's slack now (-inf: unbounded); deadline - p50 for projected_late, deadline -
    margin - p90 for at_risk."""
    why: str = ""


def slack_of(kind: str, row: Projection, margin_s: float) -> float | None:
    """The slack a kind is judged on (negative: breached); None without a deadline."""
    if row.deadline_ts is None:
        return None
    if kind == PROJECTED_LATE:
        return UNBOUNDED_SLACK if row.p50_ts is None else row.deadline_ts - row.p50_ts
    return UNBOUNDED_SLACK if row.p90_ts is None else row.deadline_ts - margin_s - row.p90_ts


def judge(
    row: Projection, occurrence: str, margin_s: float, standings: Mapping[str, Standing], now_ts: float
) -> tuple[list[Verdict], dict[str, Standing]]:
    """The verdicts of one evaluation of one event at `now_ts`, and its standings after them (by kind)."""
    verdicts: list[Verdict] = []
    kept: dict[str, Standing] = {}
    for kind, standing in standings.items():
        why = _gone(row, occurrence, standing)
        if why:
            verdicts.append(Verdict(kind, row.event, "resolve", slack_of(kind, row, margin_s) or 0.0, why))
        else:
            kept[kind] = standing
    if row.deadline_ts is None:
        return verdicts, kept
    for kind in KINDS:
        slack = slack_of(kind, row, margin_s)
        assert slack is not None
        quiet = (kind == AT_RISK and PROJECTED_LATE in kept) or now_ts >= row.deadline_ts
        verdict, after = _judge_kind(kind, row, occurrence, slack, margin_s, kept.get(kind), quiet)
        if verdict is not None:
            verdicts.append(verdict)
        if after is not None:
            kept[kind] = after
        else:
            kept.pop(kind, None)
    return verdicts, kept


def _gone(row: Projection, occurrence: str, standing: Standing) -> str:
    """Why a standing alert ends regardless of the slack, or ""."""
    if standing.occurrence != occurrence:
        return "the event's next occurrence took over"
    if row.deadline_ts is None:
        return "the event has no deadline any more"
    if row.state is RunState.SUCCEEDED and row.p50_ts is not None and row.p50_ts <= row.deadline_ts:
        return "finished in time"
    return ""


def _judge_kind(
    kind: str, row: Projection, occurrence: str, slack: float, margin_s: float, standing: Standing | None, quiet: bool
) -> tuple[Verdict | None, Standing | None]:
    """`quiet`: it may not page now (held back by projected_late, or past the deadline)."""
    finished = row.state is RunState.SUCCEEDED
    if slack >= 0:
        if standing is None:
            return None, None
        if standing.on_time + 1 >= ON_TIME_TO_RESOLVE:
            return Verdict(kind, row.event, "resolve", slack, "on time in two evaluations in a row"), None
        return None, replace(standing, on_time=standing.on_time + 1)
    if standing is None:
        if finished or quiet:  # finished late: the miss is history, not a forecast
            return None, None
        return Verdict(kind, row.event, "open", slack), Standing(kind, occurrence, slack)
    step = max(margin_s, MIN_REPAGE_STEP_S)
    worse = slack < standing.paged_slack_s and slack <= standing.paged_slack_s - step
    if worse and not standing.is_acknowledged and not quiet:
        return Verdict(kind, row.event, "page", slack), replace(standing, paged_slack_s=slack, on_time=0)
    return None, replace(standing, on_time=0)
