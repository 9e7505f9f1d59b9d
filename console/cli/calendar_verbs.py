"""The calendar side of the CLI: the AutoSys-trap warning at load and validate, `evman hold
--until`/patterns/tags, and `evman backfill`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import click

from evman.console.cli.completion import complete_event

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


# -- hold, release, backfill -----------------------------------------------------------------------

_CLI: dict[str, Callable[..., Any]] = {}
"""main.py's open_store, fail and operator (given by install: this module does not import main)."""


def install(group: click.Group, wrap: Callable[[click.Command], click.Command], **cli: Callable[..., Any]) -> None:
    """Add hold, release and backfill to the `evman` group; `cli` gives open_store, fail, operator."""
    _CLI.update(cli)
    for command in (hold, release, backfill):
        group.add_command(wrap(command))


def _fail(message: str, code: int = 1) -> NoReturn:
    _CLI["fail"](message, code)
    raise SystemExit(code)  # fail exits; this line only tells the type checker so


def _send(verb: str, target: str, args: dict[str, Any] | None, wait_s: float) -> None:
    from evman.console.mailbox import send_request
    from evman.engine.store import StoreError

    try:
        store = _CLI["open_store"]()
        _refuse_unknown(store, target)
        ok, message = send_request(store, verb, target, args=args, requested_by=_CLI["operator"](), wait_s=wait_s)
    except StoreError as exc:
        _fail(str(exc))
    if not ok:
        _fail(message)
    click.echo(message)


def _refuse_unknown(store: Any, target: str) -> None:
    """Say now, not when an engine next runs, that a name or a pattern names no defined event
    (a tag:NAME is the engine's to resolve)."""
    import fnmatch

    from evman.console.views import contract

    if ":" in target:
        return
    if not any(c in target for c in "*?["):
        row = store.event_row(target)
        if row is None or not row["defined"]:
            _fail(contract.unknown_event(store, target))
    elif not fnmatch.filter(sorted(store.event_names()), target):
        _fail(f"no defined event matches the pattern {target!r}; `evman list` shows the defined events.")


def parse_until(text: str, now: datetime) -> datetime:
    """--until: an ISO time (naive: the machine's local time) or +DURATION from now."""
    from evman.engine.timing.durations import DurationError, parse_duration

    if text.strip().startswith("+"):
        try:
            return now + timedelta(seconds=parse_duration(text.strip()[1:]))
        except DurationError as exc:
            raise click.BadParameter(str(exc)) from None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO time nor +DURATION; examples: 2026-12-24T18:00, +2h"
        ) from None
    return (value if value.tzinfo else value.astimezone()).astimezone(UTC)


wait_option = click.option(
    "--wait",
    "wait_s",
    type=float,
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the engine's answer.",
)


@click.command("hold")
@click.argument("target", shell_complete=complete_event)
@click.option("--until", "until", metavar="TIME", help="Release by itself then: ISO time, or +DURATION (+2h).")
@wait_option
def hold(target: str, until: str | None, wait_s: float) -> None:
    """Hold TARGET: no new runs start; waiting ones wait with reason 'held'.

    TARGET is an EVENT, a pattern such as 'etl-*' (quote it), or tag:NAME.

    Examples:\n
      evman hold promote-to-production\n
      evman hold 'etl-*' --until 2026-12-24T18:00\n
      evman hold tag:nightly --until +3h
    """
    args = None if until is None else {"until": parse_until(until, datetime.now(UTC)).isoformat()}
    _send("hold", target, args, wait_s)


@click.command("release")
@click.argument("target", shell_complete=complete_event)
@wait_option
def release(target: str, wait_s: float) -> None:
    """Release a held TARGET (an EVENT, a pattern such as 'etl-*', or tag:NAME).

    Example: evman release promote-to-production
    """
    _send("release", target, None, wait_s)


@click.command("backfill")
@click.argument("event", shell_complete=complete_event)
@click.option("--from", "start", required=True, metavar="DATE|TIME", help="First day (or ISO time) to cover.")
@click.option("--to", "end", required=True, metavar="DATE|TIME", help="Last day (or ISO time) to cover, included.")
@click.option(
    "--dry-run", is_flag=True, help="List the occurrences it would make, and those that already ran; make none."
)
@click.option("--max-parallel", type=click.IntRange(min=1), default=1, show_default=True, help="Backfill runs at once.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@wait_option
def backfill(event: str, start: str, end: str, dry_run: bool, max_parallel: int, as_json: bool, wait_s: float) -> None:
    """Make the occurrences EVENT's schedule (and calendar) would have made from --from to --to,
    once each: a slot that already has a run (live or backfilled) is not run again. Each run gets
    EVMAN_SCHEDULED_FOR = its slot, its business date. A date means that whole day in the event's zone.

    Examples:\n
      evman backfill daily-report --from 2026-03-02 --to 2026-03-06 --dry-run\n
      evman backfill daily-report --from 2026-03-02 --to 2026-03-06 --max-parallel 2
    """
    from evman.console.views import contract

    store = _CLI["open_store"](readonly=dry_run)
    row = store.event_row(event)
    if row is None or not row["defined"]:
        _fail(contract.unknown_event(store, event))
    if not row["schedule"] or row["schedule"] == "@reboot":
        _fail(f"{event} has no schedule, so there is nothing to backfill; use `evman trigger {event}`", 2)
    zone = ZoneInfo(row["timezone"])
    first, last = _bound(start, zone, end=False), _bound(end, zone, end=True)
    if last < first:
        _fail(f"--to {end} is before --from {start}", 2)
    if dry_run:
        _dry_run(store, row, first, last, as_json)
        return
    _send("backfill", event, {"from": first.isoformat(), "to": last.isoformat(), "max_parallel": max_parallel}, wait_s)


def _bound(text: str, zone: ZoneInfo, *, end: bool) -> datetime:
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            local = datetime.combine(day, time.max if end else time.min)
            return local.replace(tzinfo=zone).astimezone(UTC)
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f"{text!r} is neither a date (2026-03-02) nor an ISO time (2026-03-02T06:00)", 2)
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


def _dry_run(store: Any, row: Any, first: datetime, last: datetime, as_json: bool) -> None:
    import json

    from evman.engine.clock import iso
    from evman.engine.definitions import spec_from_json
    from evman.engine.timing import occurrences

    timing = occurrences.timing_of(spec_from_json(row["spec"]))
    assert timing is not None
    fires = occurrences.fires_between(timing, first - timedelta(microseconds=1), last, limit=10_001)
    taken = store.runs_scheduled_between(row["name"], iso(first), iso(last))
    plan = [{"scheduled_for": iso(at), "would_run": iso(at) not in taken} for at in fires]
    if as_json:
        click.echo(json.dumps({"event": row["name"], "occurrences": plan}, indent=2))
        return
    todo = sum(1 for p in plan if p["would_run"])
    click.echo(
        f"{row['name']}: {todo} occurrence(s) to run, {len(plan) - todo} already have a run (dry run: nothing made)"
    )
    for p in plan:
        click.echo(f"  {p['scheduled_for']}  {'would run' if p['would_run'] else 'already has a run'}")
