"""The active runs other engines own (several engines on PostgreSQL), as one tick sees them.

An engine holds only its own waiting and running runs in memory; concurrency, running(E) and
requests must count the others' too. Stages say which events they will ask about (`want`),
and the first question reads them all in one indexed statement (runs_event_active): one
read per tick, not one per occurrence. With one engine per database (SQLite) there is no
one else, and nothing is read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from evman.engine.clock import parse_iso
from evman.engine.model import RunState


@dataclass(frozen=True)
class Remote:
    """A waiting or running run of another engine (engine_id None: no engine owns it yet)."""

    id: int
    event: str
    state: RunState
    engine_id: int | None
    created_at: datetime | None = None
    flags: frozenset[str] = frozenset()

    @property
    def order(self) -> tuple[datetime, int]:
        """Its place in its event's queue (as ActiveRun.order): when it was made, then its id."""
        return (self.created_at or datetime.min.replace(tzinfo=UTC), self.id)

    @property
    def where(self) -> str:
        return "no engine yet" if self.engine_id is None else f"engine {self.engine_id}"


def _order_time(text: str | None) -> datetime | None:
    try:
        return parse_iso(text)
    except (TypeError, ValueError):  # a row another program wrote: it goes first
        return None


class Elsewhere:
    """Per tick: event -> the active runs of it that this engine does not own, committed."""

    def __init__(self, store: Any = None, owner: Any = None) -> None:
        self._store = store
        self._owner = owner
        self._known: dict[str, list[Remote]] = {}
        self._wanted: set[str] = set()
        self._locked: set[str] = set()
        """Events whose rows this tick holds locked until its flush commits (the due events it
        claimed, the events of the runs it would start): every engine starts a run of an event
        only under that lock, so what is read of them after it stays true until the commit."""
        self.reads = 0
        """Statements this tick spent (for tests: one per tick, not one per occurrence)."""

    @property
    def is_shared(self) -> bool:
        """Whether other engines may own runs here (several engines)."""
        return self._owner is not None

    def want(self, events: Iterable[str]) -> None:
        """These events will be asked about this tick: read them with the first question."""
        if self._owner is not None:
            self._wanted.update(e for e in events if e not in self._known)

    def holding(self, events: Iterable[str]) -> None:
        """This tick locked these events' rows (its claim of due events): what was read of them
        before is read again, with the next question."""
        if self._owner is None:
            return
        for event in set(events) - self._locked:
            self._locked.add(event)
            self._known.pop(event, None)
            self._wanted.add(event)

    def lock(self, events: Iterable[str]) -> set[str]:
        """Several engines: before starting runs of `events`, lock their rows until this tick's
        flush commits, then read the others' runs of them (again, if read before): of two
        engines starting a run of one event, the second reads after the first committed, so
        it sees the first's run (a queue waits behind it) and never starts beside it. Returns
        the events another engine holds locked now (it is deciding about them: their runs
        wait this tick); a row locked is skipped, never waited for."""
        if self._owner is None:
            return set()
        wanted = set(events) - self._locked
        if not wanted:
            return set()
        got = set(self._store.lock_events(sorted(wanted)))
        self.holding(got)
        return wanted - got

    def of(self, event: str) -> list[Remote]:
        """The active runs of `event` that other engines own, oldest id first."""
        if self._owner is None:
            return []
        if event not in self._known:
            self._read({event} | self._wanted)
        return self._known[event]

    def _read(self, events: set[str]) -> None:
        self.reads += 1
        found: dict[str, list[Remote]] = {e: [] for e in events}
        for row in self._store.active_elsewhere(sorted(events), self._owner):
            found[row["event"]].append(
                Remote(
                    int(row["id"]),
                    str(row["event"]),
                    RunState(row["state"]),
                    None if row["engine_id"] is None else int(row["engine_id"]),
                    _order_time(row["created_at"]),
                    frozenset((row["flags"] or "").split(",")) - {""},
                )
            )
        self._known.update(found)
        self._wanted.clear()
