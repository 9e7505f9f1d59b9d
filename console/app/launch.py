"""`evman [--db PATH]`: the console run from the command line. Its database is opened and its first
rows are read (first_read.py) before Textual is imported, then the app is made and run."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Final

from evman.console.app import collector
from evman.console.app.first_read import FirstRead
from evman.engine.clock import Clock
from evman.engine.store import StoreError
from evman.engine.store.targets import db_target, logs_dir

CONSOLE_LOG_BYTES: Final = 1 << 20
CONSOLE_LOG_FILES: Final = 3
"""console.log rotates at 1 MB, keeping 3 old files: at most 4 MB, however long it runs."""


def run_console(
    path: Path | str,
    *,
    readonly: bool,
    tick_s: float,
    operator: str,
    clock: Clock | None = None,
    metrics: tuple[str, int] | None = None,
    log_format: str = "text",
) -> int:
    """The console, with the engine in a thread unless another drives the database (its
    companions beside it: alerts, housekeeping, heartbeat, metrics). Returns the exit status."""
    try:
        first = FirstRead(db_target(path), readonly=readonly)
    except StoreError as exc:
        print(f"evman: {exc}", file=sys.stderr)
        return 1
    from evman.console.app.evman_app import EvmanApp
    from evman.engine.companions import Options

    app = EvmanApp(
        path,
        clock=clock,
        tick_s=tick_s,
        readonly=readonly,
        operator=operator,
        companions=Options(metrics=metrics),
        first_read=first,
    )
    _log_to_file(path, log_format)
    collector.hurry()  # until the first frame: see collector.py
    result = app.run()
    if app.companions is not None:
        app.companions.stop()
    return 0 if result is None else int(result)


def _log_to_file(path: Path | str, log_format: str = "text") -> None:
    """The engine logs; in a full-screen app that goes to a file, never to the terminal."""
    logs = logs_dir(db_target(path))
    try:
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            logs / "console.log", maxBytes=CONSOLE_LOG_BYTES, backupCount=CONSOLE_LOG_FILES
        )
    except OSError:
        handler = logging.NullHandler()
    from evman.engine.watch.logformat import formatter

    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
