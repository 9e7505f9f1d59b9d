"""`evman list | show | history | alerts | engines | next | plan`: what the database holds and
what it will do, as text or --json."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from evman.console.cli.common import CONTEXT, db_option, emit, fail, json_option, now, open_db
from evman.console.cli.completion import complete_event
from evman.console.views import contract
from evman.engine.quoting import quoted


@click.command("list", context_settings=CONTEXT)
@json_option
@click.option("--filter", "name_like", metavar="TEXT", help="Only events whose name contains TEXT.")
@db_option
def list_(as_json: bool, name_like: str | None) -> None:
    """Every event with its state, next fire time and last run.

    Example: evman list --json
    """
    store = open_db(readonly=True)
    rows = contract.event_list(store, name_like=name_like)
    emit(rows, as_json, contract.render_event_list)


@click.command(context_settings=CONTEXT)
@click.argument("event", shell_complete=complete_event)
@json_option
@db_option
def show(event: str, as_json: bool) -> None:
    """One event: why it waits, its window and runtime bounds, duration statistics, recent runs.

    Example: evman show fetch-feeds --json
    """
    store = open_db(readonly=True)
    data = contract.event_detail(store, event)
    if data is None:
        fail(contract.unknown_event(store, event))
    emit(data, as_json, contract.render_event_detail)


@click.command(context_settings=CONTEXT)
@click.argument("event", required=False, shell_complete=complete_event)
@click.option(
    "-n", "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many runs, newest first."
)
@json_option
@db_option
def history(event: str | None, limit: int, as_json: bool) -> None:
    """Runs, newest first, with exit codes, durations and output tails.

    Example: evman history fetch-feeds -n 10
    """
    store = open_db(readonly=True)
    if event is not None and store.event_row(event) is None:
        fail(contract.unknown_event(store, event))
    emit(contract.run_list(store, event, limit), as_json, contract.render_run_list)


@click.command(context_settings=CONTEXT)
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet resolved.")
@click.option("--event", metavar="NAME", shell_complete=complete_event, help="Only this event's alerts.")
@click.option("-n", "--limit", default=100, show_default=True, type=click.IntRange(min=1))
@json_option
@db_option
def alerts(open_only: bool, event: str | None, limit: int, as_json: bool) -> None:
    """Alerts, unacknowledged first, with their delivery attempts.

    Example: evman alerts --open --json
    """
    store = open_db(readonly=True)
    emit(contract.alert_list(store, event=event, open_only=open_only, limit=limit), as_json, contract.render_alert_list)


@click.command(context_settings=CONTEXT)
@json_option
@click.option("--check", is_flag=True, help="Exit 0 if a live engine beats, 1 if none does, 2 if a run is stuck.")
@click.option("--max-age", "max_age", default="30s", show_default=True, metavar="DURATION", help="With --check.")
@db_option
def engines(as_json: bool, check: bool, max_age: str) -> None:
    """Every engine of the database: id, host, pid, epoch, heartbeat, lease, what it runs now.

    On PostgreSQL several engines share a database, each with a lease it renews every tick;
    on a SQLite file there is at most one. With --check, one line and an exit status for a
    monitor (Nagios, a cron line on another host, a Kubernetes probe).

    Example: evman engines --check --max-age 1m
    """
    from evman.console.cli.engines import engine_list, render_engines

    store = open_db(readonly=True)
    if check:
        from evman.console.cli.health_check import check as check_health

        found = check_health(store, now(), _duration(max_age, "--max-age"))
        emit(found.as_json(), as_json, lambda _data: found.message)
        sys.exit(found.code)
    emit(engine_list(store), as_json, render_engines)


def _duration(text: str, option: str) -> float:
    from evman.engine.timing.durations import DurationError, parse_duration

    try:
        return parse_duration(text)
    except DurationError as exc:
        fail(f"{option} {quoted(text)}: {exc}", 2)


@click.command("next", context_settings=CONTEXT)
@click.argument("event", required=False, shell_complete=complete_event)
@click.option("--schedule", "spec", metavar="SPEC", help="Preview any schedule, no event needed.")
@click.option("--tz", "tz", metavar="ZONE", help="Timezone for --schedule (default: the machine's).")
@click.option("--calendar", "calendar", metavar="NAME", help="With --schedule: a calendar the database keeps.")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(min=1), help="How many fire times.")
@click.option("--after", metavar="TIME", help="ISO time to count from (default: now).")
@json_option
@db_option
def next_(
    event: str | None,
    spec: str | None,
    tz: str | None,
    calendar: str | None,
    count: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Next fire times, local and UTC, with DST gaps and repeats flagged, and the days a
    calendar removed or moved (with the holiday's name).

    Examples:\n
      evman next fetch-feeds -n 3\n
      evman next --schedule "30 2 * * *" --tz America/New_York --after 2026-03-07T12:00:00-05:00
    """
    if (event is None) == (spec is None):
        fail("give an EVENT or --schedule SPEC (one of them). Example: evman next --schedule '@daily'", 2)
    from evman.console.views import upcoming
    from evman.engine.model import OnHoliday

    start = _parse_after(after)
    try:
        if spec is None:
            store = open_db(readonly=True)
            row = store.event_row(str(event))
            if row is None:
                fail(contract.unknown_event(store, str(event)))
            if not row["schedule"]:
                fail(f"{event} has no schedule; it starts when triggered or when its condition holds.")
            spec, tz = row["schedule"], row["timezone"]
            cal, on_holiday = upcoming.event_calendar(row["spec"])
        else:
            cal = None if calendar is None else upcoming.stored_calendar(open_db(readonly=True), calendar)
            on_holiday = OnHoliday.SKIP
        data = upcoming.next_fires(str(spec), tz, start, count, event=event, calendar=cal, on_holiday=on_holiday)
    except ValueError as exc:
        fail(str(exc), 2)
    emit(data, as_json, upcoming.render_next)


@click.command(context_settings=CONTEXT)
@click.option("--at", "at", metavar="TIME", help="Project as if it were TIME (ISO, or HH:MM today; default: now).")
@click.option(
    "--what-if",
    "what_ifs",
    multiple=True,
    metavar="E=3x|E=+30m",
    help="Slow an event by a factor or delay it (repeatable); nothing is written.",
)
@json_option
@db_option
def plan(at: str | None, what_ifs: tuple[str, ...], as_json: bool) -> None:
    """Projected starts and finishes (p50, p90), slack to each deadline and the critical path.

    Examples:\n
      evman plan\n
      evman plan --json --what-if "build=3x" --what-if "fetch=+30m"
    """
    from evman.console.views import plan as planning

    store = open_db(readonly=True)
    try:
        view = planning.plan_view(store, planning.parse_at(at, now()), what_ifs)
    except planning.PlanError as exc:
        fail(str(exc), 2)
    if as_json:
        click.echo(json.dumps(planning.plan_json(view), indent=2))
    else:
        click.echo(planning.render_plan(view))


def _parse_after(after: str | None) -> datetime:
    if after is None:
        return now()
    try:
        value = datetime.fromisoformat(after)
    except ValueError:
        fail(f"--after {quoted(after)} is not an ISO time; example: 2026-03-07T12:00:00-05:00", 2)
    if value.tzinfo is None:
        value = value.astimezone()  # a naive time means the machine's local time
    return value


COMMANDS = (list_, show, history, alerts, engines, next_, plan)
