"""The `evman` command: the console, the headless engine, and the verbs other programs script."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from evman.console.cli import calendar_verbs
from evman.console.cli.calendar_verbs import warn_if_silenced
from evman.console.cli.completion import complete_event
from evman.console.views import contract
from evman.engine.quoting import quoted

if TYPE_CHECKING:
    from evman.engine.model import Definitions

DEFAULT_DB = "evman.db"
WAIT_S = 5.0

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"evman: {message}", err=True)
    sys.exit(code)


def _db_path(ctx: click.Context, value: str | None) -> Path | str:
    """--db (before or after the verb), else $EVMAN_DB, else ./evman.db: a file's Path, or a
    postgresql:// URL as text."""
    from evman.engine.store.targets import db_target

    root = ctx.find_root()
    chosen = value or (root.obj or {}).get("db") or os.environ.get("EVMAN_DB") or DEFAULT_DB
    return db_target(chosen)


def _set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(dict)
        ctx.find_root().ensure_object(dict)
        ctx.find_root().obj["db"] = value
    return value


db_option = click.option(
    "--db",
    "db",
    metavar="PATH|URL",
    expose_value=False,
    callback=_set_db,
    is_eager=True,
    help="Database file or postgresql://user@host/db URL (default: $EVMAN_DB, else ./evman.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")


def open_store(*, create: bool = False, readonly: bool = False) -> Any:
    from evman.engine.store import Store, StoreError

    ctx = click.get_current_context()
    path = _db_path(ctx, None)
    try:
        return Store(path, create=create, readonly=readonly)
    except StoreError as exc:
        _fail(str(exc))


def _emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render(data))


def _now() -> datetime:
    return datetime.now(UTC)


def _operator() -> str:
    try:
        return os.environ.get("EVMAN_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


# -- the group ------------------------------------------------------------------------------


@click.group(
    invoke_without_command=True,
    context_settings=CONTEXT,
    epilog="Examples:\n\n  evman --db sample.db            open the console\n\n"
    "  evman load defs.toml && evman --no-ui   run the engine headless\n\n"
    "  evman history fetch-feeds --json",
)
@click.option(
    "--db",
    "db",
    metavar="PATH|URL",
    envvar="EVMAN_DB",
    show_envvar=True,
    help="Database file (default ./evman.db), or postgresql://user@host/dbname "
    "(the postgres extra; several engines may share it).",
)
@click.option("--no-ui", is_flag=True, help="Run the engine headless: log to stdout, stop on SIGTERM.")
@click.option("--readonly", is_flag=True, help="Open a console that can look but not act.")
@click.option(
    "--tick", "tick_s", type=float, default=1.0, show_default=True, metavar="SECONDS", help="Engine tick interval."
)
@click.option(
    "--grace",
    "grace_s",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="On stop, how long to wait for running commands before leaving them recorded.",
)
@click.option(
    "--tags",
    "tags",
    multiple=True,
    metavar="TAG[,TAG]",
    help="What this engine offers events that ask for tags (several engines, PostgreSQL): "
    "it runs only events whose tags it has all of (and whose hosts, if any, name "
    "its host); the others wait for an engine that fits. Ignored with SQLite.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail (headless mode).")
@click.version_option("0.1.0", prog_name="evman")
@click.pass_context
def main(
    ctx: click.Context,
    db: str | None,
    no_ui: bool,
    readonly: bool,
    tick_s: float,
    grace_s: float,
    verbose: bool,
    tags: tuple[str, ...],
) -> None:
    """evman: an event manager for batch work.

    With no verb, opens the console on the database (the engine runs inside it, unless
    another engine already drives the database: then the console attaches to it).
    """
    ctx.ensure_object(dict)
    if db:
        ctx.obj["db"] = db
    if ctx.invoked_subcommand is not None:
        return
    path = _db_path(ctx, None)
    if no_ui:
        from evman.console.cli.headless import run_headless
        from evman.engine.fleet.placement import parse_tags

        sys.exit(run_headless(path, tick_s=tick_s, grace_s=grace_s, verbose=verbose, tags=parse_tags(tags)))
    from evman.console.app.evman_app import run_console

    sys.exit(run_console(path, readonly=readonly, tick_s=tick_s, operator=_operator()))


# -- definitions -----------------------------------------------------------------------------------


def validate_then_open(validate: Callable[[set[str]], Definitions]) -> tuple[Definitions, Any]:
    """`validate(names the database defines)`, then the database opened for writing. One that
    does not exist yet is created only after validation passed: a refusal (every problem on
    stderr, exit 2) leaves no file, -wal or -shm behind. A postgresql:// database is opened first."""
    from evman.engine.definitions import DefinitionsError

    target = _db_path(click.get_current_context(), None)
    is_new_file = isinstance(target, Path) and not target.exists()
    existing = None if is_new_file else open_store(create=True)
    try:
        defs = validate(set() if existing is None else set(existing.event_names()))
    except DefinitionsError as exc:
        if existing is not None:
            existing.close()
        click.echo(str(exc), err=True)
        sys.exit(2)
    return defs, existing if existing is not None else open_store(create=True)


def warn_if_placed_on_sqlite(file: Path, defs: Definitions, store: Any) -> None:
    """hosts/tags choose among several engines (PostgreSQL); one SQLite file has one engine."""
    placed = [e.name for e in defs.events if e.hosts or e.tags]
    if placed and not store.several_engines:
        names = ", ".join(placed[:5]) + (f" and {len(placed) - 5} more" if len(placed) > 5 else "")
        click.echo(
            f"{file}: warning: the hosts/tags of {names} are ignored: {store.url} is SQLite, "
            "whose one engine runs every event wherever it is; hosts/tags choose among several "
            "engines on PostgreSQL (--db postgresql://...).",
            err=True,
        )


def warn_if_no_events(file: Path, defs: Definitions) -> None:
    if not defs.events:
        click.echo(
            f"{file}: warning: it defines no events (no [[event]] table), so nothing will run; "
            "expected [[event]] tables, each with a name and one of run, shell, call or http",
            err=True,
        )


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a definitions file; exit 0 if good, 2 with every problem listed if not.

    Example: evman validate examples/publishing.toml
    """
    from evman.engine.definitions import DefinitionsError, load_definitions

    try:
        defs = load_definitions(file)
    except DefinitionsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    warn_if_no_events(file, defs)
    warn_if_silenced(file, defs)
    extra = "".join(
        f", {len(v)} {k[:-1]}(s)" for k, v in (("calendars", defs.calendars), ("blackouts", defs.blackouts)) if v
    )
    click.echo(f"{file}: {len(defs.events)} event(s), {len(defs.routes)} route(s){extra}, all valid.")


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Retire events no longer in FILE (their history stays).")
@click.option("--allow-empty", is_flag=True, help="With --prune, let a FILE that defines no events retire every event.")
@db_option
def load(file: Path, prune: bool, allow_empty: bool) -> None:
    """Validate FILE and upsert its events into the database.

    A changed schedule takes effect from now on; history is kept. Nothing is written when
    anything is wrong (exit 2).

    Example: evman load examples/publishing.toml --db sample.db
    """
    from evman.engine.definitions import catalog, load_definitions
    from evman.engine.store import StoreError

    defs, store = validate_then_open(lambda known: load_definitions(file, known_events=known))
    warn_if_no_events(file, defs)
    warn_if_placed_on_sqlite(file, defs, store)
    warn_if_silenced(file, defs)
    if prune and not defs.events and not allow_empty and (defined := store.event_names()):
        _fail(
            f"{file} defines no events, so --prune would retire all {len(defined)} event(s) of "
            f"{store.url}. Nothing was changed. Check that FILE is the right file; to retire "
            f"every event, add --allow-empty.",
            code=2,
        )
    try:
        result = catalog.save(store, defs, now=_now(), prune=prune)
    except StoreError as exc:
        _fail(str(exc))
    parts = [f"{len(v)} {k}" for k, v in result.items() if v]
    click.echo(f"loaded {file} into {store.url}: " + (", ".join(parts) or "nothing to change"))


@main.command(context_settings=CONTEXT)
@click.option("--include-secrets", is_flag=True, help="Write alert URLs with their credentials.")
@db_option
def export(include_secrets: bool) -> None:
    """Print the database's definitions as TOML (alert URLs masked unless --include-secrets).

    Example: evman export > backup.toml
    """
    store = open_store()
    click.echo(contract.export_text(store, include_secrets=include_secrets), nl=False)


@main.command("import-crontab", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--system/--user",
    "system",
    default=None,
    help="Force the format: /etc/cron.d style (with a user field) or a user crontab.",
)
@click.option("--skip-invalid", is_flag=True, help="Import the valid lines, report the others.")
@click.option("--prefix", metavar="NAME", help="Prefix for the generated event names.")
@click.option("--print", "print_only", is_flag=True, help="Print the events as TOML; load nothing.")
@db_option
def import_crontab(file: Path, system: bool | None, skip_invalid: bool, prefix: str | None, print_only: bool) -> None:
    """Turn crontab lines into events (shell commands, as cron runs them).

    Example: evman import-crontab /etc/cron.d/backup --prefix backup
    """
    from evman.console.cli.import_crontab import import_crontab_file
    from evman.engine.store import StoreError

    try:
        import_crontab_file(
            file,
            system=system,
            skip_invalid=skip_invalid,
            prefix=prefix,
            print_only=print_only,
            validate_then_open=validate_then_open,
            now=_now(),
        )
    except StoreError as exc:
        _fail(str(exc))


# -- reading ---------------------------------------------------------------------------------------


@main.command("list", context_settings=CONTEXT)
@json_option
@click.option("--filter", "name_like", metavar="TEXT", help="Only events whose name contains TEXT.")
@db_option
def list_(as_json: bool, name_like: str | None) -> None:
    """Every event with its state, next fire time and last run.

    Example: evman list --json
    """
    store = open_store(readonly=True)
    rows = contract.event_list(store, name_like=name_like)
    _emit(rows, as_json, contract.render_event_list)


@main.command(context_settings=CONTEXT)
@click.argument("event", shell_complete=complete_event)
@json_option
@db_option
def show(event: str, as_json: bool) -> None:
    """One event: why it waits, its window and runtime bounds, duration statistics, recent runs.

    Example: evman show fetch-feeds --json
    """
    store = open_store(readonly=True)
    data = contract.event_detail(store, event)
    if data is None:
        _fail(contract.unknown_event(store, event))
    _emit(data, as_json, contract.render_event_detail)


@main.command(context_settings=CONTEXT)
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
    store = open_store(readonly=True)
    if event is not None and store.event_row(event) is None:
        _fail(contract.unknown_event(store, event))
    _emit(contract.run_list(store, event, limit), as_json, contract.render_run_list)


@main.command(context_settings=CONTEXT)
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet resolved.")
@click.option("--event", metavar="NAME", shell_complete=complete_event, help="Only this event's alerts.")
@click.option("-n", "--limit", default=100, show_default=True, type=click.IntRange(min=1))
@json_option
@db_option
def alerts(open_only: bool, event: str | None, limit: int, as_json: bool) -> None:
    """Alerts, unacknowledged first, with their delivery attempts.

    Example: evman alerts --open --json
    """
    store = open_store(readonly=True)
    _emit(
        contract.alert_list(store, event=event, open_only=open_only, limit=limit), as_json, contract.render_alert_list
    )


@main.command(context_settings=CONTEXT)
@json_option
@db_option
def engines(as_json: bool) -> None:
    """Every engine of the database: id, host, pid, epoch, heartbeat, lease, what it runs now.

    On PostgreSQL several engines share a database, each with a lease it renews every tick;
    on a SQLite file there is at most one.

    Example: evman engines --db postgresql://evman@db1/batch --json
    """
    from evman.console.cli.engines import engine_list, render_engines

    store = open_store(readonly=True)
    _emit(engine_list(store), as_json, render_engines)


@main.command("next", context_settings=CONTEXT)
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
        _fail("give an EVENT or --schedule SPEC (one of them). Example: evman next --schedule '@daily'", 2)
    from evman.console.views import upcoming
    from evman.engine.model import OnHoliday

    start = _parse_after(after)
    try:
        if spec is None:
            store = open_store(readonly=True)
            row = store.event_row(str(event))
            if row is None:
                _fail(contract.unknown_event(store, str(event)))
            if not row["schedule"]:
                _fail(f"{event} has no schedule; it starts when triggered or when its condition holds.")
            spec, tz = row["schedule"], row["timezone"]
            cal, on_holiday = upcoming.event_calendar(row["spec"])
        else:
            cal = None if calendar is None else upcoming.stored_calendar(open_store(readonly=True), calendar)
            on_holiday = OnHoliday.SKIP
        data = upcoming.next_fires(str(spec), tz, start, count, event=event, calendar=cal, on_holiday=on_holiday)
    except ValueError as exc:
        _fail(str(exc), 2)
    _emit(data, as_json, upcoming.render_next)


@main.command(context_settings=CONTEXT)
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

    store = open_store(readonly=True)
    try:
        view = planning.plan_view(store, planning.parse_at(at, _now()), what_ifs)
    except planning.PlanError as exc:
        _fail(str(exc), 2)
    if as_json:
        click.echo(json.dumps(planning.plan_json(view), indent=2))
    else:
        click.echo(planning.render_plan(view))


def _parse_after(after: str | None) -> datetime:
    if after is None:
        return _now()
    try:
        value = datetime.fromisoformat(after)
    except ValueError:
        _fail(f"--after {quoted(after)} is not an ISO time; example: 2026-03-07T12:00:00-05:00", 2)
    if value.tzinfo is None:
        value = value.astimezone()  # a naive time means the machine's local time
    return value


# -- acting ----------------------------------------------------------------------------------------


def _act(verb: str, target: str, args: dict[str, Any] | None, wait_s: float) -> None:
    from evman.console.mailbox import send_request
    from evman.engine.store import StoreError

    store = open_store()
    if ":" not in target:
        row = store.event_row(target)
        if row is None or not row["defined"]:
            _fail(contract.unknown_event(store, target))  # say so now, not when an engine next runs
    try:
        ok, message = send_request(store, verb, target, args=args, requested_by=_operator(), wait_s=wait_s)
    except StoreError as exc:
        _fail(str(exc))
    if ok:
        click.echo(message)
    else:
        _fail(message)


def _verb(name: str, summary: str, example: str, *, force: bool = False) -> None:
    @click.argument("target", shell_complete=complete_event)
    @click.option(
        "--wait",
        "wait_s",
        type=float,
        default=WAIT_S,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for the engine's answer.",
    )
    @db_option
    def command(target: str, wait_s: float, force: bool = False) -> None:
        _act(name, target, {"force": True} if force else None, wait_s)

    command.__doc__ = f"{summary}\n\nExample: {example}"
    if force:
        command = click.option("--force", is_flag=True, help="Start now, ignoring its window and requires.")(command)
    main.command(name, context_settings=CONTEXT)(command)


_verb(
    "trigger",
    "Start a new run of EVENT now (it still obeys its requires and window).",
    "evman trigger fetch-feeds",
    force=True,
)
_verb(
    "restart",
    "Re-run a failed, killed, lost or missed run (EVENT's latest, or run:N), after running its prepare step.",
    "evman restart run:12",
    force=True,
)
_verb("kill", "Kill EVENT's running run (or run:N): TERM to its process group, then KILL.", "evman kill publish")
calendar_verbs.install(main, db_option, open_store=open_store, fail=_fail, operator=_operator)
_verb("ack", "Acknowledge EVENT's open alerts, or one alert:N: stops repeat paging.", "evman ack alert:7")


if __name__ == "__main__":
    main()
