"""`evman --no-ui`: the engine in the foreground, logging to stdout, stopping cleanly on a signal;
with its companions (engine/companions.py): notifier, housekeeper, heartbeat, metrics, systemd."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evman.engine.companions import Companions
    from evman.engine.engine import Engine


def setup_logging(verbose: bool, log_format: str) -> None:
    from evman.engine.watch.logformat import formatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def run_headless(
    path: Path | str,
    *,
    tick_s: float,
    grace_s: float,
    verbose: bool,
    tags: frozenset[str] = frozenset(),
    metrics: tuple[str, int] | None = None,
    log_format: str = "text",
) -> int:
    from evman.engine.companions import Companions, Options
    from evman.engine.engine import Change, Engine, EngineBusy
    from evman.engine.store import StoreError, open_store
    from evman.engine.watch.systemd import Systemd

    setup_logging(verbose, log_format)
    log = logging.getLogger("evman")
    stopping = threading.Event()
    engines: list[Engine] = []
    systemd = Systemd.from_env()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping (waiting up to %gs for running commands)", signal.Signals(signum).name, grace_s)
        stopping.set()
        if systemd is not None:
            systemd.stopping()
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

    engine = Engine(store, tick_s=tick_s, stop_grace_s=grace_s, on_change=report, tags=tags)  # logs: targets.logs_dir
    try:
        engine.start()
    except (EngineBusy, StoreError) as exc:
        print(f"evman: {exc}", file=sys.stderr)
        _say_failed(store, str(exc))
        return 1
    engines.append(engine)
    from evman.engine.tick.pace import settle_heap

    settle_heap()  # the process is the engine: its start-up heap out of the collector's reach
    if stopping.is_set():
        engine.stop()
    try:
        companions = Companions(path, engine, Options(metrics=metrics, systemd=systemd)).start()
    except OSError as exc:  # the metrics port is taken, or the address is not ours
        print(f"evman: cannot serve metrics on {metrics}: {exc.strerror or exc}", file=sys.stderr)
        engine.stop()
        engine.shutdown()
        return 1
    log.info("engine started on %s (pid %d, tick %gs)", store.url, engine.pid, tick_s)
    companions.ready()
    return _run(engine, companions, log)


def _run(engine: Engine, companions: Companions, log: logging.Logger) -> int:
    thread = threading.Thread(target=engine.run, name="evman-engine")
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    companions.stopping()
    if engine.fenced is not None:
        from evman.engine.fleet.membership import FENCED_EXIT

        log.error("engine fenced: %s", engine.fenced)
        companions.stop(error=f"fenced: {engine.fenced}")
        return FENCED_EXIT
    companions.stop()
    log.info("engine stopped")
    return 0


def _say_failed(store: object, why: str) -> None:
    """The engine could not start: its heartbeat (if the database names one) says /fail."""
    from evman.engine.watch.health import Health
    from evman.engine.watch.heartbeat import Heartbeat

    try:
        Heartbeat(store, Health(), timeout_s=5.0).stop(error=why)  # type: ignore[arg-type]
    except Exception as exc:  # reading the database failed too: the message above says why
        logging.getLogger("evman").debug("heartbeat /fail not sent: %s", exc)
