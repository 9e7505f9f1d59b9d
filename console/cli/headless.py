"""`evman --no-ui`: the engine in the foreground, logging to stdout, stopping cleanly on a signal."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evman.engine.engine import Engine


def run_headless(
    path: Path | str, *, tick_s: float, grace_s: float, verbose: bool, tags: frozenset[str] = frozenset()
) -> int:
    from evman.engine.engine import LOG_FORMAT, Change, Engine, EngineBusy
    from evman.engine.store import StoreError, open_store
    from evman.engine.store.targets import logs_dir

    logging.basicConfig(stream=sys.stdout, level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
    log = logging.getLogger("evman")
    stopping = threading.Event()
    engines: list[Engine] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping (waiting up to %gs for running commands)", signal.Signals(signum).name, grace_s)
        stopping.set()
        for running in engines:
            running.stop()

    # Before anything slow: a SIGTERM during start-up must stop cleanly too, not kill.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        store = open_store(path, create=False)
    except StoreError as exc:
        print(f"evman: {exc}", file=sys.stderr)
        return 1

    def report(changes: list[Change]) -> None:
        for c in changes:
            run = f" run {c.run_id}" if c.run_id is not None else ""
            log.info("%s %s%s %s%s", c.kind, c.event, run, c.state or "", f" ({c.detail})" if c.detail else "")

    engine = Engine(store, tick_s=tick_s, stop_grace_s=grace_s, on_change=report, logs_dir=logs_dir(path), tags=tags)
    try:
        engine.start()
    except (EngineBusy, StoreError) as exc:
        print(f"evman: {exc}", file=sys.stderr)
        return 1
    engines.append(engine)
    if stopping.is_set():
        engine.stop()
    from evman.engine.paging.notifier import start_notifier  # Apprise: slow to import, so after the signals

    notifier = start_notifier(path, engine)
    log.info("engine started on %s (pid %d, tick %gs)", store.url, engine.pid, tick_s)
    thread = threading.Thread(target=engine.run, name="evman-engine")
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    notifier.stop()
    if engine.fenced is not None:
        from evman.engine.fleet.membership import FENCED_EXIT

        log.error("engine fenced: %s", engine.fenced)
        return FENCED_EXIT
    log.info("engine stopped")
    return 0
