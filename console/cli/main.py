"""The `evman` command: the console, the headless engine, and the verbs other programs script
(definitions.py, reading.py, upkeep.py; the request verbs of verbs.py are built from the engine's
table when one is asked for, so `evman list` never imports the engine's tick). The group adds
the commands of those modules the first time it is asked for a command (a verb typed, --help,
completion): opening the console, it is asked for none and imports none of them."""

from __future__ import annotations

import sys
from typing import Any

import click

from evman.console.cli.common import CONTEXT, db_path, fail


class EvmanGroup(click.Group):
    """The group: its commands added when it is first asked for one, the request verbs (trigger,
    kill, ...) made on demand from the verb table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from evman.console.cli.verbs import request_names

        add_commands(self)
        return sorted({*super().list_commands(ctx), *request_names()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        add_commands(self)
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        from evman.console.cli.verbs import request_command

        return request_command(cmd_name)


@click.group(
    cls=EvmanGroup,
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
    help="Database file (default ./evman.db), or a PostgreSQL URL or key=value string as libpq takes it: "
    "postgresql://user@host/dbname, postgresql:///dbname?host=/run/postgresql, 'host=... dbname=...' "
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
@click.option("--metrics", "metrics", metavar="HOST:PORT", help="Serve Prometheus metrics there (e.g. 127.0.0.1:9464).")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", help="json: one object a line, for shippers."
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail (headless mode).")
@click.version_option(package_name="evman", prog_name="evman")
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
    metrics: str | None,
    log_format: str,
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
    path = db_path(ctx, None)
    address = _metrics_address(metrics)
    if no_ui:
        from evman.console.cli.headless import run_headless
        from evman.engine.fleet.placement import parse_tags

        sys.exit(
            run_headless(
                path,
                tick_s=tick_s,
                grace_s=grace_s,
                verbose=verbose,
                tags=parse_tags(tags),
                metrics=address,
                log_format=log_format,
            )
        )
    from evman.console.app import collector

    collector.hold()  # until the first frame: see collector.py
    from evman.console.app.launch import run_console
    from evman.console.mailbox import operator

    sys.exit(
        run_console(path, readonly=readonly, tick_s=tick_s, operator=operator(), metrics=address, log_format=log_format)
    )


def _metrics_address(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    from evman.engine.watch.metrics import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        fail(str(exc), 2)


_added: set[int] = set()


def add_commands(group: click.Group) -> None:
    """The commands of definitions.py, reading.py and upkeep.py, added to `group` once (a new
    module of commands is imported here, not at the top: the console would import it too)."""
    if id(group) in _added:
        return
    _added.add(id(group))
    from evman.console.cli import definitions, reading, upkeep

    for command in (*definitions.COMMANDS, *reading.COMMANDS, *upkeep.COMMANDS):
        group.add_command(command)


def __getattr__(name: str) -> Any:
    """`every_command`: the group with the request verbs added (docs/reference/cli.md lists
    every command through it; mkdocs-click reads a group's `commands`, which holds the others)."""
    if name != "every_command":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from evman.console.cli.verbs import request_command, request_names

    add_commands(main)
    for verb in request_names():
        found = request_command(verb)
        if found is not None:
            main.add_command(found)
    return main


if __name__ == "__main__":
    main()
