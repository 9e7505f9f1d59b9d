"""`evman backfill`: its own command (a --dry-run reads the database and sends nothing); its name
and help are its row of the verb table (engine/verbs/table.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from evman.console.cli.common import CONTEXT, ask, db_option, fail, open_db, wait_option
from evman.console.cli.completion import complete_event
from evman.engine.verbs import Verb, verb_named


def _verb() -> Verb:
    found = verb_named("backfill")
    assert found is not None, "engine/verbs/table.py has a backfill row"
    return found


@click.command("backfill", context_settings=CONTEXT, help=_verb().help)
@click.argument("event", shell_complete=complete_event)
@click.option("--from", "start", required=True, metavar="DATE|TIME", help="First day (or ISO time) to cover.")
@click.option("--to", "end", required=True, metavar="DATE|TIME", help="Last day (or ISO time) to cover, included.")
@click.option(
    "--dry-run", is_flag=True, help="List the occurrences it would make, and those that already ran; make none."
)
@click.option("--max-parallel", type=click.IntRange(min=1), default=1, show_default=True, help="Backfill runs at once.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@wait_option
@db_option
def command(event: str, start: str, end: str, dry_run: bool, max_parallel: int, as_json: bool, wait_s: float) -> None:
    from evman.console.views import contract

    store = open_db(readonly=dry_run)
    row = store.event_row(event)
    if row is None or not row["defined"]:
        fail(contract.unknown_event(store, event))
    if not row["schedule"] or row["schedule"] == "@reboot":
        fail(f"{event} has no schedule, so there is nothing to backfill; use `evman trigger {event}`", 2)
    zone = ZoneInfo(row["timezone"])
    first, last = _bound(start, zone, end=False), _bound(end, zone, end=True)
    if last < first:
        fail(f"--to {end} is before --from {start}", 2)
    if dry_run:
        _dry_run(store, row, first, last, as_json)
        return
    args = {"from": first.isoformat(), "to": last.isoformat(), "max_parallel": max_parallel}
    ask(_verb(), event, args, wait_s)


def _bound(text: str, zone: ZoneInfo, *, end: bool) -> datetime:
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            local = datetime.combine(day, time.max if end else time.min)
            return local.replace(tzinfo=zone).astimezone(UTC)
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{text!r} is neither a date (2026-03-02) nor an ISO time (2026-03-02T06:00)", 2)
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
