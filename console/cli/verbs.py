"""`evman trigger | restart | kill | hold | release | ack | backfill ...`: the request verbs, one
command per row of the engine's verb table (engine/verbs/table.py). Each writes a `requests` row
and waits for the engine's answer; its options go to the engine as the request's args. A verb
whose command line does more than send (backfill's --dry-run reads and sends nothing) has its
own command, in OWN_COMMANDS."""

from __future__ import annotations

from typing import Any, Final

import click

from evman.console.cli import backfill
from evman.console.cli.common import CONTEXT, ask, db_option, now, wait_option
from evman.console.cli.completion import complete_event
from evman.engine.verbs import VERBS, Verb

OWN_COMMANDS: Final[dict[str, click.Command]] = {"backfill": backfill.command}
"""The verbs whose command is written by hand (from the same row: name, help)."""


def request_names() -> list[str]:
    return [verb.name for verb in VERBS]


def request_command(name: str) -> click.Command | None:
    """The command of the verb called exactly `name`, or None."""
    verb = next((v for v in VERBS if v.name == name), None)
    if verb is None:
        return None
    return OWN_COMMANDS.get(name) or command_for(verb)


def command_for(verb: Verb) -> click.Command:
    @click.argument("target", shell_complete=complete_event)
    @wait_option
    @db_option
    def command(target: str, wait_s: float, **options: Any) -> None:
        ask(verb, target, args_of(verb, options) or None, wait_s)

    for option in reversed(verb.options):
        if option.metavar is None:
            command = click.option(option.flag, option.key, is_flag=True, help=option.help)(command)
        else:
            command = click.option(
                option.flag, option.key, metavar=option.metavar, help=option.help, multiple=option.multiple
            )(command)
    return click.command(verb.name, context_settings=CONTEXT, help=verb.help)(command)


def args_of(verb: Verb, options: dict[str, Any]) -> dict[str, Any]:
    """The request's args from the options given (a flag not given, a value not given: absent)."""
    args: dict[str, Any] = {}
    for option in verb.options:
        value = options[option.key]
        if value is None or value is False or value == ():
            continue
        if option.parse is not None:
            try:
                value = option.parse(value, now())
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=option.flag) from None
        args[option.key] = value
    return args
