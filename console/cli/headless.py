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
    from evman.engine.paging.notifier import Notifier


def run_headless(
    path: Path | str, *, tick_s: float, grace_s: float, verbose: bool, tags: frozenset[str] = frozenset()
) -> int:
    from evman.engine.engine import Change, Engine, EngineBusy
    from evman.engine.store import Store, StoreError

    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
        store = Store(path, create=False)
    except StoreError as exc:
        print(f"evman: {exc}", file=sys.stderr)
        return 1

    def report(changes: list[Change]) -> None:
        for c in changes:
            run = f" run {c.run_id}" if c.run_id is not None else ""
            log.info("%s %s%s %s%s", c.kind, c.event, run, c.state or "", f" ({c.detail})" if c.detail else "")

    engine = Engine(store, tick_s=tick_s, stop_grace_s=grace_s, on_change=report, tags=tags)  # logs: targets.logs_dir
    try:
        engine.start()
    except (EngineBusy, StoreError) as exc:
        print(f"evman: {exc}", file=sys.stderr)
        return 1
    engines.append(engine)
    if stopping.is_set():
        engine.stop()
    notifier = NotifierStart(path, engine).start()
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


class NotifierStart:
    """The engine's notifier, started as soon as the database lets it connect: a server that
    restarts while the engine starts delays the pages (they wait as rows), never ends the engine."""

    RETRY_S = 2.0

    def __init__(self, path: Path | str, engine: Engine) -> None:
        self.path, self.engine = path, engine
        self.notifier: Notifier | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> NotifierStart:
        if not self._try(first=True):
            self._thread = threading.Thread(target=self._retry, name="evman-notifier-start", daemon=True)
            self._thread.start()
        return self

    def _try(self, *, first: bool = False) -> bool:
        try:
            from evman.engine.paging.notifier import start_notifier
        except ImportError:
            return True  # no Apprise: nothing to start
        from evman.engine.store import StoreError

        try:
            self.notifier = start_notifier(self.path, self.engine)
        except StoreError as exc:
            if first:
                logging.getLogger("evman").warning(
                    "the notifier could not connect (%s); alerts wait as rows, trying again every %g s",
                    exc,
                    self.RETRY_S,
                )
            return False
        if not first:
            logging.getLogger("evman").info("the notifier connected; it delivers the alerts that waited")
        return True

    def _retry(self) -> None:
        while not self._stop.wait(self.RETRY_S) and not self._try():
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.notifier is not None:
            self.notifier.stop()
