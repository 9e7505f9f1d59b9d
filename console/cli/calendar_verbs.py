"""The calendar side of the CLI: the AutoSys-trap warning at load and validate, `evman hold
--until`/patterns/tags, and `evman backfill`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from evman.engine.model import Definitions


def warn_if_silenced(file: Path, defs: Definitions, now: datetime | None = None) -> None:
    """Warn of each event whose calendar leaves it no occurrence in the next 30 days (a calendar
    whose dates ran out, a schedule that only hits closed days): the job would go silent."""
    from evman.engine.timing.occurrences import SILENT_DAYS, silenced, timing_of

    now = now or datetime.now(UTC)
    for spec in defs.events:
        timing = timing_of(spec)
        found = None if timing is None or (spec.calendar is None and not timing.is_business) else silenced(timing, now)
        if found is None:
            continue
        own, real = found
        cal = f"calendar {spec.calendar.name!r}" if spec.calendar else "the business days"
        then = "and never after" if real is None else f"(the next is {real.isoformat()})"
        alone = f"; its schedule alone would run it at {own.isoformat()}" if own else ""
        click.echo(
            f"{file}: warning: event {spec.name!r}: {cal} leaves it no occurrence in the next {SILENT_DAYS} days "
            f"{then}{alone}. Check the calendar's dates; once loaded, the engine raises a no_occurrence alert.",
            err=True,
        )
