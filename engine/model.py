"""The records evman keeps: event specs, their definitions, and the vocabularies they are written in.

The closed vocabularies (run states, alert kinds, triggers, ...) are `StrEnum`s whose values are
the strings stored: a row's "running" equals `RunState.RUNNING`, so code names the member and
never spells the string again. Those of runs and alerts live in vocabulary.py (re-exported here)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from evman.engine.vocabulary import ACTIVE_STATES as ACTIVE_STATES
from evman.engine.vocabulary import ALERT_KINDS as ALERT_KINDS
from evman.engine.vocabulary import FAILED_STATES as FAILED_STATES
from evman.engine.vocabulary import FINISHED_STATES as FINISHED_STATES
from evman.engine.vocabulary import NEW as NEW
from evman.engine.vocabulary import RESTARTABLE as RESTARTABLE
from evman.engine.vocabulary import TRANSITIONS as TRANSITIONS
from evman.engine.vocabulary import AlertKind as AlertKind
from evman.engine.vocabulary import InvalidTransition as InvalidTransition
from evman.engine.vocabulary import KindFacts as KindFacts
from evman.engine.vocabulary import RunState as RunState
from evman.engine.vocabulary import Trigger as Trigger
from evman.engine.vocabulary import alert_facts as alert_facts
from evman.engine.vocabulary import check_transition as check_transition
from evman.engine.vocabulary import states_before as states_before


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
