"""The coordination side of the CLI: `evman trigger --param`, `evman approve` and `evman reject`
(request verbs), and `evman pools`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from evman.console.cli.completion import complete_event

_CLI: dict[str, Callable[..., Any]] = {}
"""main.py's act, open_store and emit (given by install: this module does not import main)."""

wait_option = click.option(
    "--wait",
    "wait_s",
    type=float,
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the engine's answer.",
)
comment_option = click.option("--comment", metavar="TEXT", help="Why; recorded on the run with your name.")


def install(group: click.Group, wrap: Callable[[click.Command], click.Command], **cli: Callable[..., Any]) -> None:
    """Add trigger, approve, reject and pools to the `evman` group; `cli` gives act, open_store, emit."""
    _CLI.update(cli)
    for command in (trigger, approve, reject, pools):
        group.add_command(wrap(command))


def parse_params(values: tuple[str, ...]) -> dict[str, str] | None:
    """--param NAME=VALUE (repeatable) as {NAME: VALUE}; the engine checks them against the event."""
    given: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{text!r} is not NAME=VALUE; example: --param customer=acme", param_hint="--param"
            )
        if name.strip() in given:
            raise click.BadParameter(f"{name.strip()} is given twice", param_hint="--param")
        given[name.strip()] = value
    return given or None


@click.command("trigger")
@click.argument("target", shell_complete=complete_event)
@click.option("--force", is_flag=True, help="Start now, ignoring its window and requires.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A run parameter (repeatable).")
@wait_option
def trigger(target: str, force: bool, params: tuple[str, ...], wait_s: float) -> None:
    """Start a new run of EVENT now (it still obeys its requires and window).

    TARGET is an EVENT, or group:NAME (the group's first events; the others follow them).
    Each --param is checked against the event's params; a command sees it as
    EVMAN_PARAM_<NAME>, a callable as a keyword argument, an HTTP call in its body.

    Examples:\n
      evman trigger fetch-feeds\n
      evman trigger monthly-invoice --param customer=acme --param date=2026-03-01\n
      evman trigger group:nightly-billing
    """
    args: dict[str, Any] = {}
    if force:
        args["force"] = True
    given = parse_params(params)
    if given:
        args["params"] = given
    _CLI["act"]("trigger", target, args or None, wait_s)


@click.command("approve")
@click.argument("target", shell_complete=complete_event)
@comment_option
@wait_option
def approve(target: str, comment: str | None, wait_s: float) -> None:
    """Approve the run of EVENT that awaits approval (or run:N): it may start.

    Your name and the comment are recorded on the run, and the approver's route is told.
    An approval counts only for a run that awaits one when you give it.

    Example: evman approve run:12 --comment "release notes checked"
    """
    _CLI["act"]("approve", target, {"comment": comment} if comment else None, wait_s)


@click.command("reject")
@click.argument("target", shell_complete=complete_event)
@comment_option
@wait_option
def reject(target: str, comment: str | None, wait_s: float) -> None:
    """Reject the run of EVENT that awaits approval (or run:N): it is skipped, never run.

    Example: evman reject promote-to-production --comment "not on a Friday"
    """
    _CLI["act"]("reject", target, {"comment": comment} if comment else None, wait_s)


@click.command("pools")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def pools(as_json: bool) -> None:
    """Each pool: its size, the runs that hold its slots, and the runs waiting for them in the
    order they get them (priority, then when they fell due).

    Example: evman pools --json
    """
    from datetime import UTC, datetime

    from evman.console.views.pools import pool_rows, render_pools

    store = _CLI["open_store"](readonly=True)
    _CLI["emit"](pool_rows(store, datetime.now(UTC)), as_json, render_pools)
