"""`evman import-crontab`: crontab lines to validated events in the database."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import tomli_w

from evman.engine.model import Definitions

Validate = Callable[[set[str]], Definitions]


def import_crontab_file(
    file: Path,
    *,
    system: bool | None,
    skip_invalid: bool,
    prefix: str | None,
    print_only: bool,
    validate_then_open: Callable[[Validate], tuple[Definitions, Any]],
    now: datetime,
) -> None:
    """`validate_then_open(validate)`: the definitions validated against the database's
    events, and the database open for writing (created only after validation passed)."""
    from evman.engine.crontab import CrontabError, parse_crontab
    from evman.engine.definitions import catalog, parse_definitions

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"evman: cannot read {file}: {exc}", err=True)
        sys.exit(2)
    try:
        imported = parse_crontab(text, source=str(file), system=system, skip_invalid=skip_invalid, name_prefix=prefix)
    except CrontabError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    for lineno, why in imported.warnings:
        click.echo(f"{file}:{lineno}: warning: {why}" if lineno else f"{file}: warning: {why}", err=True)
    for lineno, why in imported.skipped:
        click.echo(f"{file}:{lineno}: skipped: {why}", err=True)
    for event in imported.events:
        event.setdefault("cwd", _cron_home(event))
    toml_text = tomli_w.dumps({"event": imported.events})
    if print_only:
        click.echo(toml_text, nl=False)
        return
    defs, store = validate_then_open(
        lambda known: parse_definitions(toml_text, source=str(file), base_dir=file.parent.resolve(), known_events=known)
    )
    from evman.engine.store import StoreError

    for warning in defs.warnings:  # placed in the generated TOML: say the crontab, not its line there
        click.echo(re.sub(rf"^{re.escape(str(file))}:\d+: ", f"{file}: ", warning), err=True)
    try:
        result = catalog.save(store, defs, now=now)
    except StoreError as exc:  # read-only, full or locked database: one line, no traceback
        click.echo(f"evman: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"imported {len(defs.events)} event(s) from {file} into {store.url}: "
        + ", ".join(f"{len(v)} {k}" for k, v in result.items() if v)
    )


def _cron_home(event: dict[str, Any]) -> str:
    """Where cron would run the job: HOME from the crontab, else the user's home directory."""
    import os
    import pwd

    env = event.get("env")
    if isinstance(env, dict) and env.get("HOME"):
        return str(env["HOME"])
    user = event.get("user")
    try:
        return pwd.getpwnam(str(user)).pw_dir if user else os.path.expanduser("~")
    except KeyError:
        return os.path.expanduser("~")
