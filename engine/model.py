"""The records evman keeps: event specs, runs, states and which state may follow which.

The closed vocabularies (run states, alert kinds, triggers, ...) are `StrEnum`s whose values are
the strings stored: a row's "running" equals `RunState.RUNNING`, so code names the member and
never spells the string again."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


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


class Concurrency(enum.StrEnum):
    SKIP = "skip"
    QUEUE = "queue"
    REPLACE = "replace"


class Misfire(enum.StrEnum):
    ONCE = "once"
    ALL = "all"
    SKIP = "skip"


class OnLost(enum.StrEnum):
    """What becomes of a run that was `lost` (its engine died while it ran)."""

    ALERT = "alert"
    """It stays lost and pages (the default)."""
    RERUN = "rerun"
    """It pages, and a surviving engine starts it again."""


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


@dataclass(frozen=True)
class KindFacts:
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


class OnHoliday(enum.StrEnum):
    """What becomes of a fire on a day its event's calendar closes."""

    SKIP = "skip"
    NEXT = "next"
    """It runs on the next business day, at the same local time."""
    PREVIOUS = "previous"
    """It runs on the previous business day, at the same local time."""


class OnBlackout(enum.StrEnum):
    """What a run that falls due inside a blackout does."""

    WAIT = "wait"
    """It waits until the blackout ends."""
    SKIP = "skip"
    """It is skipped."""


@dataclass(frozen=True)
class HolidaySource:
    """Public holidays from the `holidays` package: a country (and subdivision) or a market."""

    country: str | None = None
    subdiv: str | None = None
    market: str | None = None
    """A financial market such as "XNYS" (holidays.financial_holidays) instead of a country."""
    language: str | None = None
    """The language of the holiday names, e.g. "en_US"; None: the country's own."""


@dataclass(frozen=True)
class CalendarDef:
    """One `[calendars.NAME]` table, as written (its include/exclude by name)."""

    name: str
    weekend: tuple[int, ...] | None = None
    """Weekday numbers (0 is Monday) that are never business days; None: those of the
    calendars it includes, or Saturday and Sunday."""
    holidays: tuple[HolidaySource, ...] = ()
    dates: tuple[tuple[str, str], ...] = ()
    """(ISO date, name) of the company's own closed days."""
    include: tuple[str, ...] = ()
    """Calendars whose closed days close this one's too."""
    exclude: tuple[str, ...] = ()
    """Calendars whose listed days (holidays, dates) are business days here, whatever an
    included calendar says (never a weekend day)."""


@dataclass(frozen=True)
class Calendar:
    """An event's calendar: its name and every calendar definition it is built from."""

    name: str
    defs: tuple[CalendarDef, ...]
    """The named calendar first, then those it includes or excludes, each once."""


@dataclass(frozen=True)
class Blackout:
    """One `[blackouts.NAME]` window: no run of the events it names starts inside it."""

    name: str
    start: str | None = None
    """One-off: UTC ISO start."""
    end: str | None = None
    """One-off: UTC ISO end (exclusive)."""
    schedule: str | None = None
    """Recurring: when each window starts (any schedule)."""
    duration_s: float | None = None
    """Recurring: how long each window lasts."""
    timezone: str = "UTC"
    events: tuple[str, ...] = ()
    """Event names or glob patterns ("etl-*")."""
    tags: tuple[str, ...] = ()
    """Events with any of these tags."""
    description: str = ""


class OnTimeout(enum.Enum):
    """What becomes of a run whose approval did not come within its timeout."""

    FAIL = "fail"
    SKIP = "skip"
    APPROVE = "approve"
    """It goes ahead, as if approved (an objection window: reject to stop it)."""


@dataclass(frozen=True)
class Approval:
    """`approval = { route, timeout, on_timeout }`: a run waits until someone approves it."""

    route: str | None = None
    """The route asked to approve; None: the event's driver."""
    timeout_s: float | None = None
    """How long after it was asked the run waits; None: as long as its window allows."""
    on_timeout: OnTimeout = OnTimeout.FAIL


@dataclass(frozen=True)
class Param:
    """One declared run parameter: `params = { NAME = { default, required, choices, pattern } }`."""

    default: str | None = None
    """Given when a run is not told a value; "{date}" in it becomes the run's business date."""
    required: bool = False
    """A run must be told a value (a trigger's --param, or its leader's)."""
    choices: tuple[str, ...] = ()
    """The values allowed; () allows any."""
    pattern: str | None = None
    """A regular expression the whole value must match."""
    description: str = ""


@dataclass(frozen=True)
class Window:
    earliest: str | None = None
    """Local time of day "HH:MM"; no start before it."""
    latest: str | None = None
    """Local time of day "HH:MM"; must have finished by it. Before `earliest`: spans midnight."""


@dataclass(frozen=True)
class Runtime:
    min_s: float | None = None
    max_s: float | None = None
    kill: bool = False


@dataclass(frozen=True)
class OutputCheck:
    path: str
    fresh: bool = False
    min_size: int | None = None
    max_age_s: float | None = None
    contains: str | None = None
    json: bool = False


@dataclass(frozen=True)
class OnFailure:
    retries: int = 0
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    prepare: str | None = None
    trigger: tuple[str, ...] = ()
    alert: str | None = None
    """Route to page; None means the event's driver."""


@dataclass(frozen=True)
class HttpCall:
    url: str
    method: str = "GET"
    expect: int = 200
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class EventSpec:
    """One validated `[[event]]` table. Exactly one of run, shell, call, http is set."""

    name: str
    run: tuple[str, ...] | None = None
    shell: str | None = None
    call: str | None = None
    http: HttpCall | None = None
    cwd: str = "."
    """Absolute, resolved against the definitions file's folder at load time."""
    env: Mapping[str, str] = field(default_factory=dict)
    schedule: str | None = None
    timezone: str = "UTC"
    requires: str | None = None
    window: Window = field(default_factory=Window)
    late_after: str | None = None
    runtime: Runtime = field(default_factory=Runtime)
    outputs: tuple[OutputCheck, ...] = ()
    on_success: tuple[str, ...] = ()
    on_failure: OnFailure = field(default_factory=OnFailure)
    driver: str | None = None
    concurrency: Concurrency = Concurrency.SKIP
    misfire: Misfire = Misfire.ONCE
    user: str | None = None
    description: str = ""
    stdin: str | None = None
    """Text fed to the command's stdin (crontab `%` lines)."""
    timeout_s: float | None = None
    deadline: str | None = None
    """Must have finished by: "HH:MM" in the event's timezone, or "+DURATION" after the
    occurrence fell due (e.g. "+6h"). None: no deadline beyond the window's latest."""
    expect_s: float | None = None
    """Declared typical runtime, used while the run history is thin."""
    on_lost: OnLost = OnLost.ALERT
    hosts: tuple[str, ...] = ()
    """Host names an engine must run on to start this event; () means any host."""
    tags: tuple[str, ...] = ()
    """Tags matched against the engines' --tags to choose where it runs; () means any engine."""
    calendar: Calendar | None = None
    """Its business calendar, resolved at load; None: every day is a business day (a
    business-day schedule then counts Monday to Friday)."""
    on_holiday: OnHoliday = OnHoliday.SKIP
    on_blackout: OnBlackout = OnBlackout.WAIT
    keep_runs_s: float | None = None
    """keep.runs: how long its finished runs are kept; None: [defaults] keep.runs."""
    keep_logs_s: float | None = None
    """keep.logs: how long its runs' log files are kept; None: [defaults] keep.logs."""
    uses: Mapping[str, int] = field(default_factory=dict)
    """Pool name -> slots a run holds while it runs (`[pools]`); it starts only when all are free."""
    priority: int = 0
    """Among runs waiting for a pool, higher goes first (then the one that fell due first)."""
    approval: Approval | None = None
    group: str | None = None
    """The group it belongs to: held, released, triggered and watched as one (`group:NAME`)."""
    params: Mapping[str, Param] = field(default_factory=dict)
    """The run parameters it declares, by name."""

    @property
    def kind(self) -> str:
        if self.run is not None:
            return "run"
        if self.shell is not None:
            return "shell"
        if self.call is not None:
            return "call"
        return "http"


@dataclass(frozen=True)
class Route:
    name: str
    urls: tuple[str, ...] = ()
    config: str | None = None
    """Path of an Apprise config file, optional."""
    tags: tuple[str, ...] = ()
    quiet_from: str | None = None
    quiet_to: str | None = None
    quiet_except: tuple[str, ...] = ()
    escalate_to: str | None = None
    escalate_after_s: float | None = None


@dataclass(frozen=True)
class Defaults:
    timezone: str = "UTC"
    driver: str | None = None
    repeat_s: float = 1800.0
    max_repeats: int = 10
    at_risk_margin_s: float = 600.0
    """Accepted and kept (older definitions files set it); foresight pages on probabilities now
    and does not use it."""
    keep_runs_s: float = 90 * 86400.0
    """keep.runs: finished runs older than this are deleted (but see engine/retention/rules.py)."""
    keep_logs_s: float = 30 * 86400.0
    """keep.logs: runs' log files older than this are deleted; the run row stays, marked pruned."""
    keep_requests_s: float = 30 * 86400.0
    """keep.requests: handled requests older than this are deleted (a dedupe_key is remembered as long)."""
    keep_alerts_s: float = 90 * 86400.0
    """keep.alerts: resolved alerts (with their deliveries), and deliveries, older than this are deleted."""
    heartbeat_url: str | None = None
    """A dead-man's-switch URL pinged every heartbeat_every_s while the engine is healthy."""
    heartbeat_every_s: float = 60.0


@dataclass(frozen=True)
class Definitions:
    defaults: Defaults
    routes: Mapping[str, Route]
    events: tuple[EventSpec, ...]
    source: str = ""
    calendars: Mapping[str, CalendarDef] = field(default_factory=dict)
    blackouts: Mapping[str, Blackout] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What is odd but loads (e.g. a user this machine lacks), one line each, placed as problems are."""
    pools: Mapping[str, int] = field(default_factory=dict)
    """`[pools]`: name -> how many slots it has."""
