"""What one tick leaves the next: a tick that failed anywhere (its flush, or a read half-way)
is carried on whole, its writes, new runs, ended runs not yet followed up, spawns and changes
with it, so none is lost or made twice; after a flush only the events it fired go on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evman.engine.fleet.elsewhere import Elsewhere
from evman.engine.fleet.membership import Membership
from evman.engine.tick.context import Tick


class Carry:
    """The engine's next tick, made from what the last one left unwritten."""

    def __init__(self, first: Tick, fleet: Membership | None) -> None:
        self.unflushed = first
        """Writes, inserts and spawns a failed flush left (the next tick carries them on); its
        runs, view, runner, ids and host are every tick's."""
        self.fleet = fleet

    def begin(self, now: datetime, *, stopping: bool) -> Tick:
        """A tick that goes on from what the last one left unwritten."""
        left, owner = self.unflushed, self.owner()
        self.unflushed = Tick(
            now,
            left.runs,
            left.view,
            left.runner,
            left.next_id,
            left.host,
            stopping=stopping,
            fired=left.fired,
            batch=left.batch,
            inserts=left.inserts,
            to_spawn=left.to_spawn,
            changes=left.changes,
            ended=left.ended,
            done=left.done,
            acked=left.acked,
            next_due_moved=left.next_due_moved,
            owner=owner,
            elsewhere=Elsewhere(left.view.store, owner),
            placement=self.fleet,
        )
        return self.unflushed

    def flushed(self, tick: Tick) -> None:
        """`tick` is written: the next one carries on only the events it fired."""
        self.unflushed = Tick(
            tick.now,
            tick.runs,
            tick.view,
            tick.runner,
            tick.next_id,
            tick.host,
            fired=tick.fired,
            owner=self.owner(),
            placement=self.fleet,
        )

    def owner(self) -> Any:
        """Several engines: this engine's fleet Token (None with one engine)."""
        return None if self.fleet is None else self.fleet.token
