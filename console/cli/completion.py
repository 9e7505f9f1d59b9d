"""Shell completion of event names: the verbs that name an event complete it from the database
(`--db` on the line, else $EVMAN_DB, else ./evman.db), read only when the shell asks."""

from __future__ import annotations

import os

import click
from click.shell_completion import CompletionItem

TARGET_PREFIXES = ("run:", "alert:", "tag:", "group:")
"""Targets that are not event names: nothing to complete from the events."""


def database(ctx: click.Context) -> str:
    """The database the command line names, as the verb would open it."""
    root = ctx.find_root()
    named = root.params.get("db") or (root.obj or {}).get("db") or os.environ.get("EVMAN_DB")
    return str(named or "evman.db")


def event_names(target: str) -> list[str]:
    """The defined events of the database, sorted; none when it cannot be read (completion
    never prints an error into the reader's shell)."""
    from evman.engine.store import StoreError, open_store
    from evman.engine.store.targets import db_target

    try:
        store = open_store(db_target(target), readonly=True)
    except (StoreError, OSError, ValueError):
        return []
    try:
        return sorted(store.event_names())
    except (StoreError, OSError):
        return []
    finally:
        store.close()


def complete_event(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    if incomplete.startswith(TARGET_PREFIXES):
        return []
    return [CompletionItem(name) for name in event_names(database(ctx)) if name.startswith(incomplete)]
