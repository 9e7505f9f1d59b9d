"""`evman trigger | restart | kill | hold | release | ack ...`: the request verbs, one command per
row of the engine's verb table (engine/verbs/table.py). Each writes a `requests` row and waits
for the engine's answer; its options go to the engine as the request's args."""

from __future__ import annotations

from typing import Any

import click

from evman.console.cli.common import CONTEXT, WAIT_S, db_option, fail, open_db, operator
from evman.console.views import contract
from evman.engine.verbs import VERBS, Verb


def request_names() -> list[str]:
    return [verb.name for verb in VERBS]


def request_command(name: str) -> click.Command | None:
    """The command of the verb called exactly `name`, or None."""
    verb = next((v for v in VERBS if v.name == name), None)
    return None if verb is None else command_for(verb)


def command_for(verb: Verb) -> click.Command:
    @click.argument("target")
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
    def command(target: str, wait_s: float, **options: Any) -> None:
        given = {o.key: options[o.key] for o in verb.options if options[o.key] not in (None, False)}
        ask(verb.name, target, given or None, wait_s)

    for option in verb.options:
        if option.metavar is None:
            command = click.option(option.flag, option.key, is_flag=True, help=option.help)(command)
        else:
            command = click.option(option.flag, option.key, metavar=option.metavar, help=option.help)(command)
    return click.command(verb.name, context_settings=CONTEXT, help=f"{verb.summary}\n\nExample: {verb.example}")(
        command
    )


def ask(verb: str, target: str, args: dict[str, Any] | None, wait_s: float) -> None:
    """Send the request and print the engine's answer (exit 1 when it refused)."""
    from evman.console.mailbox import send_request
    from evman.engine.store import StoreError

    store = open_db()
    if ":" not in target:
        row = store.event_row(target)
        if row is None or not row["defined"]:
            fail(contract.unknown_event(store, target))  # say so now, not when an engine next runs
    try:
        ok, message = send_request(store, verb, target, args=args, requested_by=operator(), wait_s=wait_s)
    except StoreError as exc:
        fail(str(exc))
    if ok:
        click.echo(message)
    else:
        fail(message)
