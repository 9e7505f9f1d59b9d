"""The runs of the next due occurrence, drafted while the loop waits for it (ReadView.prefetch):
what a scheduled run is made of that follows from its spec and its occurrence alone, so that
the tick that makes it only numbers it, admits it against the runs of that moment, writes and
starts it (stages/materialise.py, stages/start.py).

A draft serves only the spec it was drafted from (the same object: a `load` makes the view
decode every spec again) and the due time it was drafted for; anything else is worked out anew."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from evman.engine.clock import iso
from evman.engine.coordination import params
from evman.engine.coordination.params import ParamError
from evman.engine.model import Blackout, EventSpec, Trigger
from evman.engine.timing.windows import Bounds, bounds_for


class Draft(NamedTuple):
    """A scheduled run of `spec` for the occurrence due at `due_text`, before it is made."""

    spec: EventSpec
    due_text: str
    """The event's next_fire_at as the look-ahead read it."""
    scheduled_for: datetime
    next_fire: datetime | None
    """The first fire after this one: the event's next fire time, if it is made on time."""
    next_text: str | None
    bounds: Bounds
    """Its window (bounds_for at its scheduled time)."""
    params: dict[str, str]
    """Its parameters (a scheduled run's are the event's defaults for its business date)."""
    fields: dict[str, Any]
    """The run's fields as new_run would make them (ActiveRun.born_from)."""
    plain: bool
    """Nothing in its spec makes its run wait (approval, requires, pools, a blackout that names
    it): the start stage starts it at once unless the moment does (stages/start.py)."""

    def serves(self, spec: EventSpec | None, due_text: str, now: datetime, grace_s: float) -> bool:
        """Whether the run due at `due_text` can be made from this draft at `now`: the same
        spec, the same occurrence, on time (within `grace_s`, and its next fire still ahead:
        a backlog goes through misfire as ever)."""
        return (
            spec is self.spec
            and due_text == self.due_text
            and (self.next_fire is None or self.next_fire > now)
            and (now - self.scheduled_for).total_seconds() <= grace_s
        )


def draft_of(
    spec: EventSpec, due_text: str, due: datetime, next_fire: datetime | None, blackouts: tuple[Blackout, ...] = ()
) -> Draft | None:
    """The draft of the run of `spec` due at `due`, whose next fire is `next_fire`, `blackouts`
    those that name it; None when its parameters cannot be made (the due tick says why, as ever)."""
    try:
        values = scheduled_params(spec, due)
    except ParamError:
        return None
    bounds = bounds_for(spec, due)
    fields = {
        "event": spec.name,
        "trigger": Trigger.SCHEDULE,
        "attempt": 1,
        "scheduled_for": due,
        "window_open": bounds.open_at,
        "due_by": bounds.due_by,
        "late_at": bounds.late_at,
        "params": values,
    }
    plain = spec.approval is None and spec.requires is None and not spec.uses and not blackouts
    return Draft(spec, due_text, due, next_fire, iso(next_fire), bounds, values, fields, plain)


def scheduled_params(spec: EventSpec, due: datetime) -> dict[str, str]:
    """A scheduled run's parameters: its event's defaults for the business date of `due`
    (tick/coordination.py params_for, given nothing, no leader, repeating nothing)."""
    if not spec.params:
        return {}
    return params.resolve(spec.params, {}, event=spec.name, date=params.business_date(due, spec.timezone))
