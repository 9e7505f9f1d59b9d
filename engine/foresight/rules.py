"""When foresight pages: at_risk and projected_late opened, paged again, resolved. Pure rules
over the probability of missing the deadline (engine/foresight/projection.py).

- at_risk opens when the probability has been at least AT_RISK_OPEN for HOLD_S; it is
  resolved once it has stayed below AT_RISK_CLEAR for HOLD_S.
- projected_late opens when it has been at least LATE_OPEN for HOLD_S (an unbounded path
  counts as 1); resolved once below LATE_CLEAR for HOLD_S. When it opens, an open at_risk
  is resolved without a page (projected_late says more), and at_risk does not open again
  for that occurrence: good news does not page. While projected_late is pending, at_risk
  waits, its own hold still counting: if the probability dips back under LATE_OPEN (but not
  under AT_RISK_OPEN), at_risk opens as soon as its hold is over.
- An open alert pages again only when something changed: a run started or ended and its
  expected finish (p50) is now later by more than ETA_STEP_S than at its last page, or a
  new blocker appeared (the first event on its path that will not finish unless someone
  acts). The clock alone moving the expected finish on pages nobody. Escalation is the
  notifier's (the route's escalate_to and escalate_after). Acknowledged: no more pages.
- It also resolves when the event finishes in time, when its next occurrence takes over, or
  when it no longer has a deadline. Once the deadline has passed nothing opens or pages:
  the miss is no longer a forecast (overdue and missed say it).

The thresholds were chosen from bench W7's nights (bench/README.md, docs/guides/foresight.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from evman.engine.model import AlertKind, RunState

if TYPE_CHECKING:
    from evman.engine.foresight.projection import Projection

AT_RISK: Final = AlertKind.AT_RISK
PROJECTED_LATE: Final = AlertKind.PROJECTED_LATE
KINDS: Final = (PROJECTED_LATE, AT_RISK)
"""In the order they are judged: projected_late first, so that it can hold at_risk back."""
AT_RISK_OPEN: Final = 0.7
AT_RISK_CLEAR: Final = 0.4
LATE_OPEN: Final = 0.9
LATE_CLEAR: Final = 0.7
HOLD_S: Final = 600.0
"""How long a probability must stay past a threshold before an alert opens or resolves."""
ETA_STEP_S: Final = 3600.0
"""An open alert pages again when its expected finish moved later by more than this."""


@dataclass(frozen=True)
class Thresholds:
    """The rules' numbers (the defaults above; bench W7 replays others to compare)."""

    at_risk_open: float = AT_RISK_OPEN
    at_risk_clear: float = AT_RISK_CLEAR
    late_open: float = LATE_OPEN
    late_clear: float = LATE_CLEAR
    hold_s: float = HOLD_S
    eta_step_s: float = ETA_STEP_S

    def open_at(self, kind: str) -> float:
        return self.at_risk_open if kind == AT_RISK else self.late_open

    def clear_below(self, kind: str) -> float:
        return self.at_risk_clear if kind == AT_RISK else self.late_clear


THRESHOLDS: Final = Thresholds()


@dataclass(frozen=True)
class Standing:
    """An open foresight alert, as the rules remember it between evaluations."""

    kind: str
    paged_eta_ts: float | None
    """The expected (p50) finish at its last page; None: unbounded then."""
    paged_blocker: str | None = None
    """The blocker its last page named."""
    below_since_ts: float | None = None
    """Since when the probability has been below the kind's clear threshold."""
    is_acknowledged: bool = False


@dataclass(frozen=True)
class Watch:
    """One event's foresight state for one occurrence."""

    occurrence: str
    """Which occurrence (the stage uses its deadline, as ISO text)."""
    open: Mapping[str, Standing] = field(default_factory=dict)
    pending: Mapping[str, float] = field(default_factory=dict)
    """kind -> since when its open threshold has held (not open yet)."""
    was_late: bool = False
    """projected_late opened for this occurrence: at_risk stays quiet."""


@dataclass(frozen=True)
class Verdict:
    kind: str
    event: str
    action: str
    """"open" (a new alert, paged), "page" (paged again: something changed), "resolve"."""
    probability: float
    why: str = ""


def probability(row: Projection) -> float:
    """P(miss) of a row with a deadline: 1 when unbounded."""
    return 1.0 if row.miss_probability is None or row.p50_ts is None else row.miss_probability


def judge(
    row: Projection,
    occurrence: str,
    watch: Watch | None,
    now_ts: float,
    blocker: str | None = None,
    *,
    news: bool = True,
    rules: Thresholds = THRESHOLDS,
) -> tuple[list[Verdict], Watch | None]:
    """The verdicts of one evaluation of one event at `now_ts`, and its watch after them.
    `blocker`: the first event on its path that will not finish unless someone acts.
    `news`: a run started or ended (or was held, released...) since the last evaluation;
    without news, a later expected finish is the clock's doing and pages nobody."""
    verdicts: list[Verdict] = []
    if watch is not None:
        why = _gone(row, occurrence)
        if watch.occurrence != occurrence or why:
            verdicts += [
                Verdict(k, row.event, "resolve", probability(row), why or "the event's next occurrence took over")
                for k in watch.open
            ]
            watch = None
    if row.deadline_ts is None:
        return verdicts, None
    watch = watch or Watch(occurrence)
    quiet = now_ts >= row.deadline_ts or row.state is RunState.SUCCEEDED
    p = probability(row)
    for kind in KINDS:
        found, watch = _judge_kind(kind, row, p, watch, now_ts, quiet, blocker, news, rules)
        verdicts += found
    empty = not watch.open and not watch.pending and not watch.was_late
    return verdicts, None if empty else watch


def _gone(row: Projection, occurrence: str) -> str:
    """Why an open alert ends whatever the probability says, or ""."""
    if row.deadline_ts is None:
        return "the event has no deadline any more"
    if row.state is RunState.SUCCEEDED and row.p50_ts is not None and row.p50_ts <= row.deadline_ts:
        return "finished in time"
    return ""


def _judge_kind(
    kind: str,
    row: Projection,
    p: float,
    watch: Watch,
    now_ts: float,
    quiet: bool,
    blocker: str | None,
    news: bool,
    rules: Thresholds,
) -> tuple[list[Verdict], Watch]:
    standing = watch.open.get(kind)
    if standing is not None:
        return _judge_open(standing, row, p, watch, now_ts, quiet, blocker, news, rules)
    held_back = kind == AT_RISK and (watch.was_late or PROJECTED_LATE in watch.open)
    if p < rules.open_at(kind) or quiet or held_back:
        if kind not in watch.pending:
            return [], watch
        return [], replace(watch, pending={k: v for k, v in watch.pending.items() if k != kind})
    since = watch.pending.get(kind)
    if since is None:
        return [], replace(watch, pending={**watch.pending, kind: now_ts})
    if now_ts - since < rules.hold_s or (kind == AT_RISK and PROJECTED_LATE in watch.pending):
        return [], watch  # a pending projected_late holds at_risk back, but not its clock
    return _open(kind, row, p, watch, blocker)


def _open(kind: str, row: Projection, p: float, watch: Watch, blocker: str | None) -> tuple[list[Verdict], Watch]:
    verdicts = [Verdict(kind, row.event, "open", p)]
    still = {k: s for k, s in watch.open.items()}
    if kind == PROJECTED_LATE and AT_RISK in still:
        del still[AT_RISK]
        verdicts.insert(0, Verdict(AT_RISK, row.event, "resolve", p, "superseded by projected_late"))
    still[kind] = Standing(kind, row.p50_ts, blocker)
    pending = {k: v for k, v in watch.pending.items() if k != kind}
    return verdicts, Watch(watch.occurrence, still, pending, watch.was_late or kind == PROJECTED_LATE)


def _judge_open(
    standing: Standing,
    row: Projection,
    p: float,
    watch: Watch,
    now_ts: float,
    quiet: bool,
    blocker: str | None,
    news: bool,
    rules: Thresholds,
) -> tuple[list[Verdict], Watch]:
    kind = standing.kind
    if p < rules.clear_below(kind) and not quiet:
        since = standing.below_since_ts if standing.below_since_ts is not None else now_ts
        if now_ts - since >= rules.hold_s:
            still = {k: s for k, s in watch.open.items() if k != kind}
            why = f"below {rules.clear_below(kind):.0%} for {rules.hold_s / 60:.0f} min"
            return [Verdict(kind, row.event, "resolve", p, why)], replace(watch, open=still)
        return [], _with(watch, replace(standing, below_since_ts=since))
    if standing.below_since_ts is not None:
        standing = replace(standing, below_since_ts=None)
        watch = _with(watch, standing)
    why = (
        "" if quiet or standing.is_acknowledged else changed(standing, row, blocker, news=news, step_s=rules.eta_step_s)
    )
    if not why:
        return [], watch
    paged = replace(standing, paged_eta_ts=row.p50_ts, paged_blocker=blocker or standing.paged_blocker)
    return [Verdict(kind, row.event, "page", p, why)], _with(watch, paged)


def changed(
    standing: Standing, row: Projection, blocker: str | None, *, news: bool = True, step_s: float = ETA_STEP_S
) -> str:
    """What changed since the standing's last page that is worth a page, or ""."""
    if blocker is not None and blocker != standing.paged_blocker:
        return f"new blocker: {blocker}"
    eta, before = row.p50_ts, standing.paged_eta_ts
    if news and before is not None and eta is not None and eta - before > step_s:
        return "expected finish moved later"
    return ""


def _with(watch: Watch, standing: Standing) -> Watch:
    return replace(watch, open={**watch.open, standing.kind: standing})
