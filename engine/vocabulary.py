"""The words a run and an alert are stored in: run states and which state may follow which,
alert kinds and what evman does with each, what started a run.

They are `StrEnum`s whose values are the strings stored: a row's "running" equals
`RunState.RUNNING`, so code names the member and never spells the string again. They live
apart from the definitions' records (model.py, which re-exports them) so that what only reads
runs and alerts (the console's first screen, the store) does not make those records' classes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, NamedTuple


class RunState(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    MISSED = "missed"
    SKIPPED = "skipped"
    LOST = "lost"

    @property
    def is_finished(self) -> bool:
        return self not in (RunState.WAITING, RunState.RUNNING)


ACTIVE_STATES: Final = frozenset({RunState.WAITING, RunState.RUNNING})
FAILED_STATES: Final = frozenset({RunState.FAILED, RunState.KILLED, RunState.LOST})
RESTARTABLE: Final = frozenset(s for s in RunState if s.is_finished and s is not RunState.SUCCEEDED)
"""The states of a run that `restart` may repeat (every end but success)."""

FINISHED_STATES: Final = frozenset(s for s in RunState if s.is_finished)

NEW: Final = None
"""The key of TRANSITIONS for a run being made (it has no state yet)."""

TRANSITIONS: Final[Mapping[RunState | None, frozenset[RunState]]] = {
    NEW: frozenset({RunState.WAITING, RunState.SKIPPED}),
    RunState.WAITING: frozenset(
        {RunState.RUNNING, RunState.MISSED, RunState.SKIPPED, RunState.FAILED, RunState.KILLED}
    ),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.KILLED, RunState.LOST}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.KILLED: frozenset(),
    RunState.MISSED: frozenset(),
    RunState.SKIPPED: frozenset(),
    RunState.LOST: frozenset(),
}
"""Which state may follow which; every change of a run's state is checked here (check_transition),
and the compare-and-set of the writes that change it is read from here (states_before).

NEW -> WAITING is every run made; NEW -> SKIPPED one that concurrency = "skip" turned away while
another run of its event was active (it never waited: its row says why it was skipped).
WAITING -> FAILED is a failing `prepare`; WAITING -> KILLED an operator's kill of a queued run;
WAITING -> SKIPPED a waiting run that concurrency = "replace" cancelled."""


class InvalidTransition(ValueError):
    """A state change the table does not allow: a defect of the engine, never of the user's input."""


def check_transition(run_id: int, event: str, old: RunState | None, new: RunState) -> RunState:
    """`new`, if TRANSITIONS lets run `run_id` of `event` go from `old` (NEW: a run being made)
    to it; else InvalidTransition, naming the states it may go to."""
    allowed = TRANSITIONS[old]
    if new not in allowed:
        names = ", ".join(sorted(allowed)) or "none (it has finished)"
        if old is NEW:
            raise InvalidTransition(f"Run {run_id} of {event!r} cannot be made {new}; a new run may be: {names}.")
        raise InvalidTransition(f"Run {run_id} of {event!r} cannot go from {old} to {new}; it may go to: {names}.")
    return new


def states_before(*targets: RunState) -> frozenset[RunState]:
    """The states from which a run may move to one of `targets`: what a write that makes that
    move expects the row to hold (its compare-and-set)."""
    return frozenset(old for old, nxt in TRANSITIONS.items() if old is not None and nxt & set(targets))


class AlertKind(enum.StrEnum):
    FAILED = "failed"
    LATE = "late"
    OVERDUE = "overdue"
    MISSED = "missed"
    OVERRUN = "overrun"
    TOO_FAST = "too_fast"
    LOST = "lost"
    RECOVERED = "recovered"
    DELIVERY = "delivery"
    AT_RISK = "at_risk"
    """A miss of the deadline has been likely (engine/foresight/rules.py: from 70 %) for a while."""
    PROJECTED_LATE = "projected_late"
    """A miss is near certain (from 90 %), or the path to it will not finish unless someone acts."""
    NO_OCCURRENCE = "no_occurrence"
    """Its calendar leaves a scheduled event no occurrence in the next 30 days."""
    APPROVAL = "approval"
    """A run awaits approval: the approver's route is asked (open until someone decides)."""
    APPROVED = "approved"
    """Someone approved a run (a notice to the approver's route)."""
    REJECTED = "rejected"
    """Someone rejected a run: it is skipped (a notice to the approver's route)."""
    APPROVAL_TIMEOUT = "approval_timeout"
    """Nobody decided within the approval's timeout; on_timeout says what became of the run."""


class KindFacts(NamedTuple):
    """What evman does with an alert of one kind (ALERT_KINDS)."""

    severity: str
    """Apprise's notify type for its pages (their colour and icon): "failure", "warning", "success"."""
    tone: str
    """How the console colours it while it is open and unacknowledged: "bad", "warn" or "ok"."""
    repeats: bool = False
    """The clock pages it again every `repeat` until acknowledged, and it escalates."""
    escalates: bool = False
    """It escalates to the route's escalate_to (every kind that repeats does too)."""
    resolved_by_success: bool = False
    """A later success of its event resolves it."""
    recovers: bool = False
    """Resolved by a success, it says so: a `recovered` alert."""
    while_waiting: bool = False
    """Raised about a run that has not started: its page says why the run waits."""


ALERT_KINDS: Final[Mapping[AlertKind, KindFacts]] = {
    AlertKind.FAILED: KindFacts("failure", "bad", repeats=True, resolved_by_success=True, recovers=True),
    AlertKind.LATE: KindFacts("warning", "warn", resolved_by_success=True, while_waiting=True),
    AlertKind.OVERDUE: KindFacts("warning", "bad", repeats=True, resolved_by_success=True),
    AlertKind.MISSED: KindFacts(
        "failure", "bad", repeats=True, resolved_by_success=True, recovers=True, while_waiting=True
    ),
    AlertKind.OVERRUN: KindFacts("warning", "warn", resolved_by_success=True),
    AlertKind.TOO_FAST: KindFacts("warning", "warn"),
    AlertKind.LOST: KindFacts("failure", "bad", repeats=True, resolved_by_success=True, recovers=True),
    AlertKind.RECOVERED: KindFacts("success", "ok"),
    AlertKind.DELIVERY: KindFacts("failure", "warn"),
    AlertKind.AT_RISK: KindFacts("warning", "bad"),
    # projected_late escalates but is not paged again by the clock: the foresight stage pages it
    # again when what it knows changed (engine/foresight/rules.py); at_risk is a heads-up
    AlertKind.PROJECTED_LATE: KindFacts("failure", "bad", escalates=True),
    AlertKind.NO_OCCURRENCE: KindFacts("warning", "warn"),
    AlertKind.APPROVAL: KindFacts("info", "warn"),
    AlertKind.APPROVED: KindFacts("info", "ok"),
    AlertKind.REJECTED: KindFacts("warning", "warn"),
    AlertKind.APPROVAL_TIMEOUT: KindFacts("warning", "warn"),
}
"""Every alert kind's facts, in one place: paging, the store and the console read them here."""


def alert_facts(kind: str) -> KindFacts | None:
    """The facts of a stored kind; None for a kind this version does not know."""
    try:
        return ALERT_KINDS[AlertKind(kind)]
    except ValueError:
        return None


class Trigger(enum.StrEnum):
    """What started a run; stored in runs.trigger."""

    SCHEDULE = "schedule"
    MANUAL = "trigger"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    CONDITION = "condition"
    RETRY = "retry"
    RESTART = "restart"
    REBOOT = "reboot"
    BACKFILL = "backfill"
    """An occurrence of the past made by `evman backfill` (same unique key as the live one)."""
