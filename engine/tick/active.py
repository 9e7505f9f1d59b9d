"""The runs a tick works on: waiting and running runs in memory, and what a tick changed."""

from __future__ import annotations

import dataclasses
import functools
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from evman.engine.clock import iso, parse_iso
from evman.engine.coordination import approvals, params, pools
from evman.engine.model import NEW, RunState, check_transition
from evman.engine.store import RUN_COLUMNS


class Change(NamedTuple):
    """One thing a tick changed, for the console and for tests. A named tuple, not a frozen
    dataclass: a tick makes two per run of a burst, and a frozen dataclass takes three times
    as long to make (each field set through object.__setattr__)."""

    kind: str
    """"run" (a run changed state), "alert", "request", "event"."""
    event: str
    run_id: int | None = None
    state: str | None = None
    detail: str | None = None


BACKFILL_FLAG: Final = "backfill"
"""A run `evman backfill` made: it paces itself (parallel=N) and never holds up a live run."""
PARALLEL_PREFIX: Final = "parallel="


@dataclass
class ActiveRun:
    """A waiting or running run, as the engine holds it in memory. Its state changes only
    through `move` (and a new one is made through `born`), which check model.TRANSITIONS."""

    id: int
    event: str
    state: RunState
    trigger: str
    attempt: int
    scheduled_for: datetime
    triggered_by: str | None = None
    repeats_run_id: int | None = None
    not_before: datetime | None = None
    window_open: datetime | None = None
    due_by: datetime | None = None
    late_at: datetime | None = None
    needs_prepare: bool = False
    started_at: datetime | None = None
    pid: int | None = None
    log_path: str | None = None
    waiting_reason: str | None = None
    flags: set[str] = field(default_factory=set)
    preparing: bool = False
    is_new: bool = False
    """Created in this flush: its row is inserted whole, so no UPDATE is written for it."""
    killed_by: str | None = None
    owned: bool = True
    """False: a new run inserted with no owner (several engines: no engine it fits holds it)."""
    created_at: datetime | None = None
    """When it was made (it fell due): runs of an event start in this order, then by id
    (several engines take ids in blocks, so an id alone is no order across engines)."""
    pools: dict[str, int] = field(default_factory=dict)
    """Pool -> slots (runs.pools): while waiting, it is in line for them; while running, it holds them."""
    params: dict[str, str] = field(default_factory=dict)
    """Its run parameters (runs.params)."""
    approval: dict[str, Any] | None = None
    """Who was asked to approve it, and who decided (runs.approval); None: it needs no approval."""

    @property
    def order(self) -> tuple[datetime, int]:
        """Its place in its event's queue: when it was made, then its id."""
        return (self.created_at or self.scheduled_for, self.id)

    end: dict[str, Any] | None = None
    """A new run that ended before its first flush: its end (ended_at, exit_code, reason,
    output_tail, checks), inserted with its row, as everything else about a new run is."""

    @classmethod
    def born(cls, state: RunState, run_id: int, event: str, **fields: Any) -> ActiveRun:
        """A new run, in a state a run may be made in (model.TRANSITIONS[NEW])."""
        return cls(run_id, event, check_transition(run_id, event, NEW, state), is_new=True, **fields)

    @classmethod
    def born_from(cls, state: RunState, run_id: int, fields: dict[str, Any], created_at: datetime) -> ActiveRun:
        """born(state, run_id, **fields), for the fields of a run worked out ahead (a draft:
        engine/tick/drafts.py), its other fields their defaults, without the dataclass's
        __init__ (~3 µs a run of a burst). `fields` names event, trigger, attempt,
        scheduled_for and params at least."""
        run = cls.__new__(cls)
        run.__dict__.update(_BORN)
        run.__dict__.update(fields)
        run.id, run.created_at, run.params = run_id, created_at, dict(fields["params"])
        run.state = check_transition(run_id, run.event, NEW, state)
        run.flags, run.pools = set(), {}
        return run

    def move(self, state: RunState) -> None:
        """Change the run's state; InvalidTransition if model.TRANSITIONS does not allow it."""
        self.state = check_transition(self.id, self.event, self.state, state)

    @property
    def is_backfill(self) -> bool:
        return BACKFILL_FLAG in self.flags

    @property
    def max_parallel(self) -> int:
        """A backfill run: how many of its event's backfill runs may run at once."""
        found = [f[len(PARALLEL_PREFIX) :] for f in self.flags if f.startswith(PARALLEL_PREFIX)]
        return int(found[0]) if found and found[0].isdigit() else 1

    def values(self, created_at: datetime, host: str) -> tuple[Any, ...]:
        """The run's row, as the values of RUN_COLUMNS (a column not named here is NULL): in
        one tuple when the table's columns are those _IN_ORDER names (a dict of them put in
        order was ~4 µs of every run of a burst), else through values_by_name."""
        if not _FAST_ROW:
            return self.values_by_name(created_at, host)
        end = self.end or _NO_END
        return (
            self.id,
            self.event,
            self.state,
            self.trigger,
            self.triggered_by,
            self.attempt,
            self.repeats_run_id,
            iso_cached(self.scheduled_for),
            iso_cached(created_at),
            iso_cached(self.not_before),
            iso_cached(self.window_open),
            iso_cached(self.due_by),
            iso_cached(self.late_at),
            int(self.needs_prepare),
            iso_cached(self.started_at),
            end.get("ended_at"),
            end.get("exit_code"),
            end.get("reason"),
            end.get("output_tail"),
            self.waiting_reason,
            self.pid,
            host if self.started_at else None,
            self.log_path,
            end.get("checks"),
            flags_text(self.flags),
            None,
            pools.uses_text(self.pools),
            params.to_json(self.params),
            approvals.to_json(self.approval),
        )

    def values_by_name(self, created_at: datetime, host: str) -> tuple[Any, ...]:
        """The run's row, as the values of RUN_COLUMNS (a column not named here is NULL)."""
        row: tuple[Any, ...] = _ROW(
            {
                **_NULLS,
                "id": self.id,
                "event": self.event,
                "state": self.state,
                "trigger": self.trigger,
                "triggered_by": self.triggered_by,
                "attempt": self.attempt,
                "repeats_run_id": self.repeats_run_id,
                "scheduled_for": iso_cached(self.scheduled_for),
                "created_at": iso_cached(created_at),
                "not_before": iso_cached(self.not_before),
                "window_open": iso_cached(self.window_open),
                "due_by": iso_cached(self.due_by),
                "late_at": iso_cached(self.late_at),
                "needs_prepare": int(self.needs_prepare),
                "started_at": iso_cached(self.started_at),
                "waiting_reason": self.waiting_reason,
                "pid": self.pid,
                "host": host if self.started_at else None,
                "log_path": self.log_path,
                "flags": flags_text(self.flags),
                "pools": pools.uses_text(self.pools),
                "params": params.to_json(self.params),
                "approval": approvals.to_json(self.approval),
                **(self.end or {}),
            }
        )
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ActiveRun:
        return cls(
            id=int(row["id"]),
            event=row["event"],
            state=RunState(row["state"]),
            trigger=row["trigger"],
            attempt=int(row["attempt"]),
            scheduled_for=parse_iso(row["scheduled_for"]),
            triggered_by=row["triggered_by"],
            repeats_run_id=row["repeats_run_id"],
            not_before=parse_iso(row["not_before"]),
            window_open=parse_iso(row["window_open"]),
            due_by=parse_iso(row["due_by"]),
            late_at=parse_iso(row["late_at"]),
            needs_prepare=bool(row["needs_prepare"]),
            started_at=parse_iso(row["started_at"]),
            pid=row["pid"],
            log_path=row["log_path"],
            waiting_reason=row["waiting_reason"],
            flags=set((row["flags"] or "").split(",")) - {""},
            created_at=order_time(row.get("created_at")),
            pools=pools.parse_uses(row.get("pools")),
            params=params.from_json(row.get("params")),
            approval=approvals.from_json(row.get("approval")),
        )


def order_time(text: str | None) -> datetime | None:
    """A run's created_at as its place in a queue; None for a value that is no time (written by
    another program), which then goes by its scheduled time: an odd row never stops a tick."""
    try:
        return parse_iso(text)
    except (TypeError, ValueError):
        return None


_ROW: Final = operator.itemgetter(*RUN_COLUMNS)
"""A row dict's values in the order of RUN_COLUMNS, in one C call (a loop over 25 columns
was a third of building a run's row)."""
_BORN: Final = {f.name: f.default for f in dataclasses.fields(ActiveRun) if f.default is not dataclasses.MISSING} | {
    "is_new": True
}
"""A new run's fields that have a plain default (ActiveRun.born_from)."""
_NULLS: Final = dict.fromkeys(RUN_COLUMNS)
"""Every column NULL: what a new run leaves unset (ended_at, exit_code, ...)."""
_IN_ORDER: Final = (
    "id",
    "event",
    "state",
    "trigger",
    "triggered_by",
    "attempt",
    "repeats_run_id",
    "scheduled_for",
    "created_at",
    "not_before",
    "window_open",
    "due_by",
    "late_at",
    "needs_prepare",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "output_tail",
    "waiting_reason",
    "pid",
    "host",
    "log_path",
    "checks",
    "flags",
    "log_pruned_at",
    "pools",
    "params",
    "approval",
)
"""The columns ActiveRun.values writes, in its order; a schema step that changes the runs table's
columns turns it to values_by_name until values is brought up to date (tests/tick/test_drafts.py)."""
_FAST_ROW: Final = RUN_COLUMNS == _IN_ORDER
_NO_END: Final[dict[str, Any]] = {}


def iso_cached(at: datetime | None) -> str | None:
    """iso(), remembered for aware times: a burst's runs share their scheduled, created and
    started times, and formatting them again was a tenth of inserting a run."""
    if at is None:
        return None
    return iso(at) if at.tzinfo is None else _iso_aware(at)


@functools.lru_cache(maxsize=1024)
def _iso_aware(at: datetime) -> str | None:
    return iso(at)


def flags_text(flags: set[str]) -> str | None:
    return ",".join(sorted(flags)) if flags else None


class ActiveRuns(dict[int, ActiveRun]):
    """The waiting and running runs by id, also indexed by event: "which runs of E are
    active?" is asked for every run on the hot path, and scanning all active runs for it
    made a burst of n runs cost n² steps."""

    def __init__(self) -> None:
        super().__init__()
        self._by_event: dict[str, dict[int, ActiveRun]] = {}

    def __setitem__(self, run_id: int, run: ActiveRun) -> None:
        old = self.get(run_id)
        if old is not None and old.event != run.event:
            self._drop(old)
        super().__setitem__(run_id, run)
        self._by_event.setdefault(run.event, {})[run_id] = run

    def __delitem__(self, run_id: int) -> None:
        run = self[run_id]
        super().__delitem__(run_id)
        self._drop(run)

    def pop(self, run_id: int, *default: Any) -> Any:
        if run_id not in self:
            if default:
                return default[0]
            raise KeyError(run_id)
        run = super().pop(run_id)
        self._drop(run)
        return run

    def clear(self) -> None:
        super().clear()
        self._by_event.clear()

    def _drop(self, run: ActiveRun) -> None:
        runs = self._by_event.get(run.event)
        if runs is not None:
            runs.pop(run.id, None)
            if not runs:
                del self._by_event[run.event]

    def of(self, event: str) -> list[ActiveRun]:
        """The active runs of `event`, oldest first."""
        runs = self._by_event.get(event)
        return list(runs.values()) if runs else []

    def count(self, event: str) -> int:
        """How many runs of `event` are active."""
        runs = self._by_event.get(event)
        return len(runs) if runs else 0

    def waiting(self) -> list[ActiveRun]:
        """The waiting runs, oldest first."""
        return sorted((r for r in self.values() if r.state is RunState.WAITING), key=lambda r: r.id)

    def in_flight(self) -> bool:
        """Whether a run or a prepare step is executing."""
        return any(r.state is RunState.RUNNING or r.preparing for r in self.values())
