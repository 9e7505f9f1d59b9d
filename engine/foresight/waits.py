"""What a waiting occurrence waits for besides the clock and its upstreams: the slots of its
pools and a pending approval. Both cost it slack, and the plan says so.

- Pools: a run in a pool's line starts no earlier than the time enough slots are free: the
  runs holding them finish (their projected finish, sample by sample, when the plan projects
  them; else their start plus their event's p50) and the runs ahead of it in the line take
  their turn first (each for its own run time). An occurrence of an event with `uses` that is
  not in the line yet (expected, or waiting for something else) starts no earlier than the
  holders of today leave it enough slots: a lower bound, whoever else joins the line later.
- Approvals: a run awaiting approval starts no earlier than now, so every minute nobody
  decides costs it a minute of slack; the text says since when it waits and what its
  timeout does.

Plain facts, read once per plan (engine/foresight/reading.py); the projection turns the pools
into a gate on each sample's start (engine/foresight/sampling.py) and these rows into words."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

Uses = tuple[tuple[str, int], ...]
"""The slots a run takes, by pool name (sorted)."""


class Claim(NamedTuple):
    """A run that holds pool slots (running) or waits in line for them."""

    run_id: int
    event: str
    uses: Uses
    holding: bool
    projected: bool
    """It is its event's current occurrence in the plan: its finish is that row's samples."""
    started_ts: float | None = None
    p50_s: float = 0.0
    """Its event's p50 run time: how long a claim the plan does not project holds its slots."""

    def label(self) -> str:
        return f"run {self.run_id} {self.event}"


class PoolFacts(NamedTuple):
    sizes: Mapping[str, int]
    holders: tuple[Claim, ...]
    line: tuple[Claim, ...]
    """The runs in line, in the order they get slots (engine/coordination/pools.in_line)."""
    uses: Mapping[str, Uses]
    """event -> the slots its runs take, for every event of the plan with `uses`."""

    def in_line(self, event: str) -> Claim | None:
        """The event's claim in the line when its plan row is that run."""
        return next((c for c in self.line if c.event == event and c.projected), None)


class PendingApproval(NamedTuple):
    run_id: int
    asked_ts: float
    route: str | None
    timeout_s: float | None
    on_timeout: str
    """fail, skip or approve: what becomes of the run when nobody decides in time."""


@dataclass(frozen=True)
class Waits:
    """What the occurrences of a plan wait for besides time and their upstreams."""

    pools: PoolFacts | None = None
    approvals: Mapping[str, PendingApproval] = field(default_factory=dict)
    """event -> its current run's approval nobody has decided on yet."""


NO_WAITS = Waits()


class PoolWait(NamedTuple):
    pool: str
    needs: int
    size: int | None
    """None: no [pools] table defines it."""
    holders: tuple[tuple[Claim, float], ...]
    """The runs holding its slots, each with its p50 finish (epoch s), soonest first."""
    ahead: tuple[Claim, ...]
    """The runs ahead of it in the pool's line."""


class Waiting(NamedTuple):
    """Why a waiting occurrence starts later than the clock and its upstreams allow, and by how much."""

    pools: tuple[PoolWait, ...] = ()
    approval: PendingApproval | None = None
    lost_s: float = 0.0
    """Slack it loses to them (p50): how much later it starts than it would without them."""


_ON_TIMEOUT = {"fail": "then it fails", "skip": "then it is skipped", "approve": "then it goes ahead"}


def pool_text(wait: PoolWait, clock: Callable[[float], str]) -> str:
    """ "pool lock: behind run 5 extract (p50 ends 03:10), after run 7 load in line"."""
    head = f"pool {wait.pool}"
    if wait.size is None:
        return f"{head}: no [pools] table defines it"
    if wait.needs > wait.size:
        return f"{head}: needs {wait.needs} slots, more than its {wait.size}"
    parts = []
    if wait.holders:
        held = ", ".join(f"{c.label()} (p50 ends {clock(ts)})" for c, ts in wait.holders)
        parts.append(f"behind {held}")
    if wait.ahead:
        first = wait.ahead[0].label()
        parts.append(
            f"after {first} in line"
            if len(wait.ahead) == 1
            else f"after {len(wait.ahead)} runs in line ({first} first)"
        )
    return f"{head}: " + (", ".join(parts) or "in line")


def approval_text(approval: PendingApproval, clock: Callable[[float], str]) -> str:
    """ "awaiting approval since 02:10 (timeout 4h, at 06:10; then it is skipped)"."""
    if approval.timeout_s is None:
        return f"awaiting approval since {clock(approval.asked_ts)} (no timeout)"
    ends = approval.asked_ts + approval.timeout_s
    then = _ON_TIMEOUT.get(approval.on_timeout, f"then on_timeout = {approval.on_timeout}")
    return f"awaiting approval since {clock(approval.asked_ts)} (timeout {_span(approval.timeout_s)}, at {clock(ends)}; {then})"


def waiting_text(waiting: Waiting | None, clock: Callable[[float], str]) -> str | None:
    """The plan row's `waiting_on`: each wait, then the slack lost to them; None: nothing."""
    if waiting is None:
        return None
    parts = [pool_text(p, clock) for p in waiting.pools]
    if waiting.approval is not None:
        parts.append(approval_text(waiting.approval, clock))
    if not parts:
        return None
    lost = f"; {_span(waiting.lost_s)} of slack lost" if waiting.lost_s >= 30 else ""
    return "; ".join(parts) + lost


def _span(seconds: float) -> str:
    """ "4h", "1h05m", "25m" (whole minutes, rounded up)."""
    hours, rest = divmod(math.ceil(round(abs(seconds) / 60, 6)), 60)
    return f"{hours}h{rest:02d}m" if hours and rest else f"{hours}h" if hours else f"{rest}m"
