"""The `evman` command's entry point. The command line that opens the console as most people
type it (`evman`, `evman --db PATH`, `evman --db PATH --readonly`) opens it at once; any other
(a verb, --help, --version, another option, a mistake, the shell asking for completions) goes
to the click group (console/cli/main.py), which gives it the same console, or its own answer or
error.

Why: the console's first frame is measured against a bare Textual app's (bench W5), and click,
with the command modules it needs, cost ~10 ms of that start to read three words."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

TICK_S = 1.0
"""The engine's tick with no --tick (the click option's default: a test holds them equal)."""
PLAIN_FLAGS = frozenset({"--readonly"})
PLAIN_VALUES = frozenset({"--db"})
"""The options a plain console command line may give, each at most once: what `evman --help` says
of them holds as it does through click (--db's value, else $EVMAN_DB, else ./evman.db)."""


def main(args: Sequence[str] | None = None) -> None:
    """`evman`: the console for a plain command line, else the click group with the same words."""
    argv = list(sys.argv[1:] if args is None else args)
    plain = None if completing(os.environ) else plain_console(argv)
    if plain is None:
        from evman.console.cli import main as group

        group(argv if args is not None else None)
        return
    try:
        sys.exit(open_console(plain.get("--db"), readonly="--readonly" in plain))
    except (EOFError, KeyboardInterrupt):  # as click says it (a ctrl+c before the app takes the terminal)
        print(file=sys.stderr)
        print("Aborted!", file=sys.stderr)
        sys.exit(1)


def plain_console(argv: Sequence[str]) -> dict[str, str] | None:
    """The options of a plain console command line ({"--db": PATH, "--readonly": ""}), or None
    when `argv` is anything else: each option once, --db's value given and not an option."""
    given: dict[str, str] = {}
    words = iter(argv)
    for word in words:
        name, eq, value = word.partition("=")
        if name in given:
            return None
        if word in PLAIN_FLAGS:
            given[word] = ""
        elif name in PLAIN_VALUES and eq:
            given[name] = value
        elif word in PLAIN_VALUES:
            value = next(words, "-")
            if value.startswith("-"):
                return None
            given[word] = value
        else:
            return None
    return given


def completing(environ: Mapping[str, str]) -> bool:
    """The shell asks click for completions (`_EVMAN_COMPLETE=...`, named after the program as
    it was called): the command line is click's to read, whatever it is."""
    return any(name.startswith("_") and name.endswith("_COMPLETE") for name in environ)


def open_console(db: str | None, *, readonly: bool) -> int:
    """What the click group's callback does with no verb and no --no-ui (console/cli/main.py)."""
    from evman.console.app import collector

    collector.hold()  # until the first frame: see collector.py
    from evman.console.app.launch import run_console
    from evman.console.mailbox import operator
    from evman.engine.store.targets import named_target

    return run_console(named_target(db), readonly=readonly, tick_s=TICK_S, operator=operator())
