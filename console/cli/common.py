"""What every `evman` verb shares: the database it opens (--db, $EVMAN_DB, ./evman.db), errors
on stderr with an exit status, --json, and who is asking."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from evman.engine.verbs import Verb

WAIT_S = 5.0

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"evman: {message}", err=True)
    sys.exit(code)


def db_path(ctx: click.Context, value: str | None) -> Path | str:
    """--db (before or after the verb), else $EVMAN_DB, else ./evman.db: a file's Path, or a
    postgresql:// URL as text."""
    from evman.engine.store.targets import named_target

    root = ctx.find_root()
    return named_target(value or (root.obj or {}).get("db"))


def set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
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
    callback=set_db,
    is_eager=True,
    help="Database file, or PostgreSQL URL / key=value string (default: $EVMAN_DB, else ./evman.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
wait_option = click.option(
    "--wait",
    "wait_s",
    type=float,
    default=WAIT_S,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the engine's answer.",
)


def open_db(*, create: bool = False, readonly: bool = False) -> Any:
    """The database --db names, opened; a failure is one line on stderr and exit 1."""
    from evman.engine.store import StoreError, open_store

    ctx = click.get_current_context()
    path = db_path(ctx, None)
    try:
        return open_store(path, create=create, readonly=readonly)
    except StoreError as exc:
        fail(str(exc))


def emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render(data))


def now() -> datetime:
    return datetime.now(UTC)


def ask(verb: Verb, target: str, args: dict[str, Any] | None, wait_s: float) -> None:
    """Send `verb`'s request and print the engine's answer (exit 1 when it refused). A target
    that names no defined event is refused now, not when an engine next runs (a tag:NAME, run:N
    or alert:N is the engine's to resolve)."""
    from evman.console.mailbox import operator, send_request
    from evman.engine.store import StoreError

    try:
        store = open_db()
        refuse_unknown(store, verb, target)
        ok, message = send_request(store, verb.name, target, args=args, requested_by=operator(), wait_s=wait_s)
    except StoreError as exc:
        fail(str(exc))
    if not ok:
        fail(message)
    click.echo(message)


def refuse_unknown(store: Any, verb: Verb, target: str) -> None:
    import fnmatch

    from evman.console.views import contract

    if ":" in target:
        return
    if verb.takes("pattern") and any(c in target for c in "*?["):
        if not fnmatch.filter(sorted(store.event_names()), target):
            fail(f"no defined event matches the pattern {target!r}; `evman list` shows the defined events.")
        return
    row = store.event_row(target)
    if row is None or not row["defined"]:
        fail(contract.unknown_event(store, target))
