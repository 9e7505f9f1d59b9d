"""`evman prune`, `evman backup` and `evman pools`: the commands that read or keep the database
itself rather than send the engine a request (the request verbs are built in verbs.py)."""

from __future__ import annotations

import click

from evman.console.cli import backup, prune
from evman.console.cli.common import CONTEXT, db_option, emit, fail, json_option, now, open_db

_made = click.Group()
prune.register(_made, open_db, emit, fail, now, json_option, db_option)
backup.register(_made, open_db, emit, fail, json_option, db_option)


@click.command("pools", context_settings=CONTEXT)
@json_option
@db_option
def pools(as_json: bool) -> None:
    """Each pool: its size, the runs that hold its slots, and the runs waiting for them in the
    order they get them (priority, then when they fell due).

    Example: evman pools --json
    """
    from evman.console.views.pools import pool_rows, render_pools

    store = open_db(readonly=True)
    emit(pool_rows(store, now()), as_json, render_pools)


COMMANDS = (*_made.commands.values(), pools)
