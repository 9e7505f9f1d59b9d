"""`evman validate | load | export | import-crontab`: definitions into and out of the database."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evman.console.cli.common import CONTEXT, db_option, db_path, fail, now, open_db
from evman.console.views import contract

if TYPE_CHECKING:
    from evman.engine.model import Definitions


def validate_then_open(validate: Callable[[set[str]], Definitions]) -> tuple[Definitions, Any]:
    """`validate(names the database defines)`, then the database opened for writing. One that
    does not exist yet is created only after validation passed: a refusal (every problem on
    stderr, exit 2) leaves no file, -wal or -shm behind. A postgresql:// database is opened first."""
    from evman.engine.definitions import DefinitionsError

    target = db_path(click.get_current_context(), None)
    is_new_file = isinstance(target, Path) and not target.exists()
    existing = None if is_new_file else open_db(create=True)
    try:
        defs = validate(set() if existing is None else set(existing.event_names()))
    except DefinitionsError as exc:
        if existing is not None:
            existing.close()
        click.echo(str(exc), err=True)
        sys.exit(2)
    return defs, existing if existing is not None else open_db(create=True)


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


def warn_if_no_events(file: Path, defs: Definitions) -> None:
    for warning in defs.warnings:  # odd but loadable: e.g. a user this machine lacks
        click.echo(warning, err=True)
    if not defs.events:
        click.echo(
            f"{file}: warning: it defines no events (no [[event]] table), so nothing will run; "
            "expected [[event]] tables, each with a name and one of run, shell, call or http",
            err=True,
        )


@click.command(context_settings=CONTEXT)
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
        f", {len(v)} {k[:-1]}(s)"
        for k, v in (("calendars", defs.calendars), ("blackouts", defs.blackouts), ("pools", defs.pools))
        if v
    )
    click.echo(f"{file}: {len(defs.events)} event(s), {len(defs.routes)} route(s){extra}, all valid.")


@click.command(context_settings=CONTEXT)
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
        fail(
            f"{file} defines no events, so --prune would retire all {len(defined)} event(s) of "
            f"{store.url}. Nothing was changed. Check that FILE is the right file; to retire "
            f"every event, add --allow-empty.",
            code=2,
        )
    try:
        result = catalog.save(store, defs, now=now(), prune=prune)
    except StoreError as exc:
        fail(str(exc))
    parts = [f"{len(v)} {k}" for k, v in result.items() if v]
    click.echo(f"loaded {file} into {store.url}: " + (", ".join(parts) or "nothing to change"))


@click.command(context_settings=CONTEXT)
@click.option("--include-secrets", is_flag=True, help="Write alert URLs with their credentials.")
@db_option
def export(include_secrets: bool) -> None:
    """Print the database's definitions as TOML (alert URLs masked unless --include-secrets).

    Example: evman export > backup.toml
    """
    store = open_db()
    click.echo(contract.export_text(store, include_secrets=include_secrets), nl=False)


@click.command("import-crontab", context_settings=CONTEXT)
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
            now=now(),
        )
    except StoreError as exc:
        fail(str(exc))


COMMANDS = (validate, load, export, import_crontab)
