"""When the engine's loop ticks next: a tick after the last one, or at the next due occurrence
if sooner (soon again, not at once, when all that was due was locked by another engine); and
garbage collected while it waits: before a burst the last tick saw coming, and the young
generations before their next collection would fall inside a tick."""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Final

from evman.engine.clock import Clock, parse_iso
from evman.engine.store import Store
from evman.engine.tick.context import Tick

BURST_AHEAD: Final = 500
"""A prefetch that decodes this many specs announces a burst: the loop collects garbage
before it falls due (see Pace.collect_before_burst)."""
COLLECT_AHEAD_S: Final = 0.2
"""...if the burst is at least this far off (a full collection of a console's heap ~50 ms)."""
YOUNG_AHEAD_S: Final = 0.01
"""The loop collects the young generations while it waits if the next tick is at least this far
off (a collection of the middle generation ~1.5 ms: see Pace.collect_young_ahead)."""
DUE_ELSEWHERE_WAIT_S: Final = 0.05
"""Several engines: a due event that another engine is materialising (its row locked until it
commits) stays due here; look again after this long instead of ticking in a tight loop."""


def settle_heap() -> None:
    """Collect, then freeze what survives: the start-up's objects (modules, the definitions)
    leave the cyclic collector's reach, and a full collection walks only what came after. For a
    process that is the engine (`evman --no-ui` calls it once, after the engine started): a full
    collection of its start-up heap took ~45-50 ms (bench W8), and it falls in whichever thread
    allocates at the moment, the housekeeper's too, which holds the interpreter while it runs
    and stalls the tick (23-29 ms, three a live stretch); after the freeze, 1-2 ms.
    Refcounting still frees every object; a cycle among frozen objects is kept."""
    gc.collect()
    gc.freeze()


def next_wait(tick_s: float, next_due: datetime | None, now: datetime, due_elsewhere: bool) -> float:
    """How long the loop sleeps after a tick: a tick, or until the next due occurrence; not 0
    when all that is due was locked by another engine (see DUE_ELSEWHERE_WAIT_S)."""
    if next_due is None:
        return tick_s
    wait = min(tick_s, max(0.0, (next_due - now).total_seconds()))
    return min(tick_s, DUE_ELSEWHERE_WAIT_S) if wait == 0.0 and due_elsewhere else wait


class Pace:
    """What the last tick saw of the next one: when the next occurrence is due, whether another
    engine held all that was due, whether a burst comes."""

    def __init__(self, clock: Clock, tick_s: float) -> None:
        self.clock = clock
        self.tick_s = tick_s
        self.next_due: datetime | None = None
        self.due_elsewhere = False
        self.burst_ahead = False

    def read_next_due(self, store: Store) -> None:
        self.next_due = parse_iso(store.next_due_at())

    def read_moved(self, tick: Tick, store: Store, *, early: bool = False) -> None:
        """Read the next due time if the tick moved it (materialise), once the fire times are
        committed. One engine reads it before a tick's starts (stages/flush.py): the read lets go
        of the GIL, which the callables just handed over would take in the middle of the tick.
        `early`: a failure there leaves it to the read after the starts, where it is the tick's."""
        if not tick.next_due_moved:
            return
        try:
            self.read_next_due(store)
        except Exception:
            if early:
                return
            raise
        tick.next_due_moved = False

    def is_due(self, now: datetime) -> bool:
        return self.next_due is not None and now >= self.next_due

    def wait_s(self, ticked: bool) -> float:
        """How long the loop waits after a tick, counted from the tick's end (a long tick must not
        make the next one late). After a failed tick a whole tick: an occurrence still due (its
        next fire time could not be recorded) would otherwise make the loop spin, and flood the log."""
        return next_wait(self.tick_s, self.next_due, self.clock.now(), self.due_elsewhere) if ticked else self.tick_s

    def collect_before_burst(self) -> None:
        """The specs of a burst were just decoded ahead of it: collect garbage now, while the
        loop waits for it, not in the tick that starts it (its thousands of new objects made
        a full collection likely there: ~13 ms of the 2,000-run tick of bench W1)."""
        if not self.burst_ahead:
            return
        self.burst_ahead = False
        due = self.next_due
        if due is not None and (due - self.clock.now()).total_seconds() >= COLLECT_AHEAD_S:
            gc.collect()

    def collect_young_ahead(self) -> None:
        """Collect the middle generation now, while the loop waits, when the next automatic
        collection would include it: CPython collects generation 1 at every eleventh collection
        of generation 0, and in a tick that costs ~1.5 ms (what survived ten young collections
        is scanned again: the tick's p99 at 1-1.5 ms medians, bench W3). Nothing is disabled or
        retuned (the process may be the driver's own code's too); the same collection runs
        earlier, between ticks."""
        if gc.get_count()[1] < gc.get_threshold()[1] - 1:
            return
        due = self.next_due
        if due is None or (due - self.clock.now()).total_seconds() >= YOUNG_AHEAD_S:
            gc.collect(1)

    def between_ticks(self) -> None:
        """What the loop does after a tick, before it waits for the next."""
        self.collect_before_burst()
        self.collect_young_ahead()
