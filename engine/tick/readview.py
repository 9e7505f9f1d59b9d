"""The store as a tick reads it: specs, holds, conditions, last outcomes and dependency edges,
each read once and remembered until the definitions (or the fact) change."""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from evman.engine.clock import parse_iso
from evman.engine.conditions import Condition, Finished, parse_condition
from evman.engine.definitions.spec_json import spec_from_json
from evman.engine.fleet.elsewhere import Elsewhere
from evman.engine.model import Blackout, EventSpec, RunState
from evman.engine.store import Store
from evman.engine.tick.active import ActiveRuns
from evman.engine.tick.drafts import Draft, draft_of
from evman.engine.timing import occurrences
from evman.engine.timing.blackouts import blackouts_from_json, names_event
from evman.engine.timing.occurrences import Timing, WalkKey, timing_of, walk_key

PREFETCH_MAX = 5000
"""At most this many specs decoded ahead of a burst (a bound on that idle tick's length)."""


@functools.lru_cache(maxsize=4096)
def condition_of(text: str) -> Condition:
    """parse_condition, once per text: conditions are immutable, and events often share one
    (a layer of a flow all waiting for the same upstreams)."""
    return parse_condition(text)


class ReadView:
    """What the stages read from the store, through caches the engine keeps between ticks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._specs: dict[str, EventSpec | None] = {}
        self._hold_ends: dict[str, datetime] | None = None
        """event -> when its hold ends by itself; None until read (again after holds change)."""
        self._timings: dict[str, Timing | None] = {}
        self._blackouts: tuple[Blackout, ...] | None = None
        self._blackouts_of: dict[str, tuple[Blackout, ...]] = {}
        self._held: dict[str, bool] = {}
        self._finished: dict[str, Finished | None] = {}
        self._groups: dict[str, list[str]] = {}
        self._pool_sizes: dict[str, int] | None = None
        self._dependents: dict[str, list[str]] | None = None
        """upstream -> events whose `requires` names it; None until read (once per definitions)."""
        self._open_kinds: dict[str, set[str]] = {}
        """Open alert kinds per event, read at once for a batch of ended runs."""
        self._defs_version = -1
        self._holds_version = -1
        self._data_version = -1
        self._prefetched_for: datetime | None = None
        self.saw_command = False
        """A spec read so far starts a process (run, shell or a prepare step): the engine then
        has its command supervisor started before the first one is due."""
        self.commands_ahead: list[str] = []
        """Command events whose specs the last prefetches decoded (their log folders can be
        made before they fall due); the engine takes them."""
        self.saw_call = False
        """A spec read so far is a callable or an HTTP call: the engine then has its worker
        threads started before the first one is due."""
        self.fires_ahead: dict[WalkKey, datetime | None] = {}
        """The first fire after the due time of each event the last prefetch read (materialise's
        arithmetic, done ahead)."""
        self.drafts: dict[str, Draft] = {}
        """event -> its run due next, drafted by the last prefetch (engine/tick/drafts.py)."""

    def committed_elsewhere(self) -> bool:
        """Whether another connection may have committed since the last look (a request, a
        `load`; on PostgreSQL every look says yes)."""
        version = self.store.data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    def look_again(self) -> None:
        """The next committed_elsewhere says yes (a failed tick may not have answered the mailbox)."""
        self._data_version = -1

    # -- definitions -------------------------------------------------------------

    def refresh_definitions(self) -> bool:
        """Forget every spec when `load` changed the definitions; True when it did. Holds changed
        by another engine (several engines) are read again, the specs kept."""
        version, holds = self.store.versions()
        if holds != self._holds_version:
            self._holds_version = holds
            self._hold_ends = None
            if version == self._defs_version and self._held:
                held = self.store.held_events()
                self._held = {name: name in held for name in self._held}
        if version == self._defs_version:
            return False
        self._defs_version = version
        self._specs.clear()
        self._held.clear()
        self._timings.clear()
        self._blackouts, self._blackouts_of = None, {}
        self._dependents = None
        self._groups.clear()
        self._pool_sizes = None
        self._prefetched_for = None
        self.drafts = {}
        return True

    def spec(self, name: str) -> EventSpec | None:
        if name not in self._specs:
            found = self.store.event_specs([name]).get(name)
            self._specs[name] = None if found is None else self._placed(spec_from_json(found[0]))
            self._held[name] = bool(found and found[1])
        return self._specs[name]

    def remember(self, row: Any) -> None:
        """Take the spec a due-events row carries, so materialising reads no spec itself."""
        if row["name"] not in self._specs:
            self._specs[row["name"]] = self._placed(spec_from_json(row["spec"]))
            self._held[row["name"]] = bool(row["held"])

    def prefetch(self, due: datetime | None, now: datetime, tick_s: float) -> int:
        """Ahead of the next due occurrence, however far off, work out what its tick would:
        the specs of the events due by then (and within a tick after it), their timings, and
        the first fire after each one's due time (their next fire, if they are materialised
        before it), so that the tick that materialises them only makes runs. Once per due time.
        Returns how many specs it decoded now."""
        if due is None or due == self._prefetched_for:
            return 0
        self._prefetched_for = due
        self.fires_ahead, self.drafts = {}, {}
        decoded = 0
        for row in self.store.due_events(max(due, now) + timedelta(seconds=tick_s), limit=PREFETCH_MAX):
            new = row["name"] not in self._specs
            if new:
                decoded += 1
                self.remember(row)
            spec = self._specs[row["name"]]
            timing = None if spec is None else self.timing(spec)
            if spec is not None and timing is not None and occurrences.is_plain(timing):
                self._draft(spec, timing, row["next_fire_at"])
            if new and spec is not None and (spec.run is not None or spec.shell is not None):
                self.commands_ahead.append(spec.name)
        return decoded

    def _draft(self, spec: EventSpec, timing: Timing, due_text: str) -> None:
        """The first fire after `due_text` (materialise's arithmetic, shared by the events of a
        timing) and the run it is due for, drafted."""
        due = parse_iso(due_text)
        if due is None:
            return
        key = walk_key(timing, due)
        if key not in self.fires_ahead:
            self.fires_ahead[key] = next(occurrences.plain_fires_after(timing, due), None)
        draft = draft_of(spec, due_text, due, self.fires_ahead[key], self.blackouts_for(spec))
        if draft is not None:
            self.drafts[spec.name] = draft

    def _placed(self, spec: EventSpec) -> EventSpec:
        """A relative cwd (a database made to travel, like sample.db) is relative to the
        database's folder; `load` itself stores absolute ones."""
        if spec.run is not None or spec.shell is not None or spec.on_failure.prepare:
            self.saw_command = True
        if spec.call is not None or spec.http is not None:
            self.saw_call = True
        if os.path.isabs(spec.cwd) or self.store.path is None:
            return spec
        return replace(spec, cwd=os.path.normpath(self.store.path.parent.absolute() / spec.cwd))

    def timing(self, spec: EventSpec) -> Timing | None:
        """The spec's timing, one object per event while the definitions stand (the
        materialise memo and the calendar caches key on it)."""
        if spec.name not in self._timings:
            self._timings[spec.name] = timing_of(spec)
        return self._timings[spec.name]

    def blackouts_for(self, spec: EventSpec) -> tuple[Blackout, ...]:
        """The blackouts that name `spec` (by name, pattern or tag), read once per definitions."""
        if self._blackouts is None:
            self._blackouts = blackouts_from_json(self.store.named_setting("blackouts"))
        if spec.name not in self._blackouts_of:
            self._blackouts_of[spec.name] = tuple(b for b in self._blackouts if names_event(b, spec))
        return self._blackouts_of[spec.name]

    def group_members(self, group: str) -> list[str]:
        """The defined events of `group`, read once per definitions (the index events_group)."""
        if group not in self._groups:
            self._groups[group] = self.store.group_members(group)
        return self._groups[group]

    def pool_sizes(self) -> dict[str, int]:
        """`[pools]` as loaded, read once per definitions."""
        if self._pool_sizes is None:
            self._pool_sizes = self.store.pool_sizes()
        return self._pool_sizes

    def is_held(self, name: str) -> bool:
        self.spec(name)
        return self._held.get(name, False)

    def set_held(self, name: str, held: bool, until: datetime | None = None) -> None:
        self._held[name] = held
        ends = self._ends()  # as committed, then this tick's change on top
        ends.pop(name, None)
        if held and until is not None:
            ends[name] = until

    def holds_ended(self, now: datetime) -> list[str]:
        """The held events whose hold `until` has come."""
        return sorted(n for n, at in self._ends().items() if at <= now)

    def _ends(self) -> dict[str, datetime]:
        if self._hold_ends is None:
            self._hold_ends = {n: at for n, t in self.store.hold_ends().items() if (at := parse_iso(t)) is not None}
        return self._hold_ends

    def dependents_of(self, name: str) -> list[str]:
        if self._dependents is None:  # every edge in one read, not one SELECT per finished event
            self._dependents = self.store.all_dependents()
        return self._dependents.get(name, [])

    # -- outcomes ------------------------------------------------------------------

    def last_finished(self, event: str) -> Finished | None:
        if event not in self._finished:
            row = self.store.last_finished(event)
            ended = None if row is None else parse_iso(row["ended_at"])
            self._finished[event] = (
                None if row is None or ended is None else Finished(RunState(row["state"]), ended, row["exit_code"])
            )
        return self._finished[event]

    def set_finished(self, event: str, finished: Finished) -> None:
        self._finished[event] = finished

    def prefetch_open_alerts(self, events: Iterable[str]) -> None:
        """Read the open alert kinds of many events at once: a success asks for them (to
        resolve them), and one SELECT per run was most of a burst's reads."""
        self._open_kinds = self.store.open_alert_kinds(events)

    def open_alert_kinds(self, event: str) -> set[str]:
        """Kinds of the open alerts of `event`, as committed (this tick's writes not included)."""
        if event in self._open_kinds:
            return self._open_kinds[event]
        return {a["kind"] for a in self.store.open_alerts_of(event)}

    def forget_open_alerts(self) -> None:
        self._open_kinds = {}


class ConditionView:
    """What a `requires` condition sees: the engine's memory first, the store behind it."""

    def __init__(self, view: ReadView, runs: ActiveRuns, spec: EventSpec, elsewhere: Elsewhere | None = None) -> None:
        self.view = view
        self.runs = runs
        self.spec = spec
        self.elsewhere = elsewhere
        """Several engines: the runs the others own count too."""

    def last_finished(self, event: str) -> Finished | None:
        return self.view.last_finished(event)

    def is_running(self, event: str) -> bool:
        if any(r.state is RunState.RUNNING for r in self.runs.of(event)):
            return True
        return self.elsewhere is not None and any(r.state is RunState.RUNNING for r in self.elsewhere.of(event))

    def group_members(self, group: str) -> list[str]:
        return self.view.group_members(group)

    def is_waiting(self, event: str) -> bool:
        if any(r.state is RunState.WAITING for r in self.runs.of(event)):
            return True
        return self.elsewhere is not None and any(r.state is RunState.WAITING for r in self.elsewhere.of(event))

    def path_exists(self, path: str) -> bool:
        full = path if os.path.isabs(path) else os.path.join(self.spec.cwd, path)
        return bool(glob.glob(full)) if glob.has_magic(full) else os.path.exists(full)
