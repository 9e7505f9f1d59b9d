"""The context every stage of a tick receives: the time, the active runs, the store's read view,
and the lists it appends its decisions to (writes, changes, ended runs, runs to spawn)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from evman.engine.fleet.elsewhere import Elsewhere
from evman.engine.fleet.placement import Placement
from evman.engine.model import RunState
from evman.engine.store import Batch
from evman.engine.tick.active import ActiveRun, ActiveRuns, Change
from evman.engine.tick.readview import ReadView


class Runner(Protocol):
    """What the stages ask of the executors."""

    def kill(self, run_id: int, *, by: str) -> bool: ...

    def log_for(self, event: str, run_id: int, recorded: str | None, now: datetime) -> str: ...


@dataclass
class Ended:
    """A run that ended in this tick, for the follow-ups stage."""

    run: ActiveRun
    state: RunState
    at: datetime
    reason: str | None
    final: bool = False
    """No retry, whatever the policy (a failed prepare step)."""
    judged: bool = False
    """Its outcome came from its process or call (not a deadline, request or cancel)."""
    followed: bool = False
    """Its follow-ups are made (a tick that fails before the rest carries it on, done)."""


@dataclass
class Tick:
    now: datetime
    runs: ActiveRuns
    view: ReadView
    runner: Runner
    next_id: Callable[[], int]
    """A new run id (unique in the database)."""
    host: str
    stopping: bool = False
    """A stopping engine starts nothing: its last tick only records what ended."""
    fired: set[str] = field(default_factory=set)
    """Events materialised whose next_fire_at is not committed yet (kept between ticks)."""
    batch: Batch = field(default_factory=Batch)
    inserts: list[ActiveRun] = field(default_factory=list)
    """Runs created since the last flush, in the order of batch.runs."""
    changes: list[Change] = field(default_factory=list)
    ended: list[Ended] = field(default_factory=list)
    done: list[Ended] = field(default_factory=list)
    """The runs that ended, once the follow-ups stage has acted on them (for the tick's report)."""
    to_spawn: list[ActiveRun] = field(default_factory=list)
    acked: dict[int, str] = field(default_factory=dict)
    """alert id -> who acknowledged it in this tick's requests (their writes are not flushed yet)."""
    owner: Any = None
    """Several engines: this engine's fleet Token; every flush renews its lease and guards its writes."""
    elsewhere: Elsewhere = field(default_factory=Elsewhere)
    """Several engines: the active runs the others own, read once this tick (engine/fleet/elsewhere.py)."""
    placement: Placement | None = None
    """Several engines: which events this engine may run, and why a run waits for another one.
    None: every event is this engine's (SQLite)."""
    next_due_moved: bool = False
    """Materialising moved some next_fire_at: the engine reads the next due time again."""
    request: dict[str, Any] | None = None
    """The `requests` row being answered (requested_at, requested_by), while a handler runs."""
    drafted: list[ActiveRun] = field(default_factory=list)
    """Runs materialise made from their drafts this tick: the start stage looks at them first."""

    def change(
        self, kind: str, event: str, run_id: int | None = None, state: str | None = None, detail: str | None = None
    ) -> None:
        self.changes.append(Change(kind, event, run_id, state, detail))
