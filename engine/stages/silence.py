"""The AutoSys trap: an event whose calendar leaves it no occurrence in the next 30 days gets a
`no_occurrence` alert (resolved when it has one again). It looks when the definitions change and
once an hour, at the events with a calendar or a business-day schedule only."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from evman.engine.clock import iso
from evman.engine.model import AlertKind
from evman.engine.tick.context import Tick
from evman.engine.timing.occurrences import SILENT_DAYS, silenced

LOOK_EVERY_S: Final = 3600.0


class SilenceWatch:
    """Its memory between ticks: when it last looked, and at which definitions."""

    def __init__(self) -> None:
        self.looked_at: datetime | None = None
        self.names: list[str] | None = None

    def forget(self) -> None:
        """The definitions changed: find the events again, and look at once."""
        self.names = None

    def run(self, tick: Tick) -> None:
        due = self.looked_at is None or (tick.now - self.looked_at).total_seconds() >= LOOK_EVERY_S
        if not due and self.names is not None:
            return
        self.looked_at = tick.now
        if self.names is None:
            self.names = tick.view.store.calendar_events()
        if self.names:
            _look(tick, self.names)


def _look(tick: Tick, names: list[str]) -> None:
    kind = AlertKind.NO_OCCURRENCE
    open_kinds = tick.view.store.open_alert_kinds(names)
    for name in names:
        spec = tick.view.spec(name)
        timing = None if spec is None else tick.view.timing(spec)
        if spec is None or timing is None:
            continue
        found = silenced(timing, tick.now)
        is_open = kind in open_kinds.get(name, set())
        if found is not None and not is_open:
            own, real = found
            then = "never again" if real is None else f"not before {iso(real)}"
            message = (
                f"{name}: its calendar leaves it no occurrence in the next {SILENT_DAYS} days ({then}), "
                f"though its schedule alone would run it at {iso(own) if own else 'once a business day'}; "
                "check the calendar's dates"
            )
            tick.batch.alert(kind, name, None, spec.driver, message, iso(tick.now))
            tick.change("alert", name, None, kind, message)
        elif found is None and is_open:
            tick.batch.alert_resolved(name, kind, iso(tick.now))
