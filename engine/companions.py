"""What runs beside an engine in its process: the notifier, the housekeeper, the heartbeat, the
metrics endpoint and systemd's notify protocol. `evman --no-ui` and the console start the same
set, so an engine is watched the same wherever it runs. The companions' modules are imported when
they start: the console makes its Options before its first frame, and starts them after it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from evman.engine.retention import Housekeeper
    from evman.engine.watch.health import Health
    from evman.engine.watch.heartbeat import Heartbeat
    from evman.engine.watch.systemd import Systemd

log = logging.getLogger("evman")


class Engine(Protocol):
    """What the companions use of the engine (engine/engine.py's Engine)."""

    tick_listeners: list[Callable[[Any], None]]
    clock: Any
    store: Any
    pid: int
    fleet: Any

    def active_runs(self) -> list[Any]: ...


@dataclass
class Options:
    notify: bool = True
    """Deliver alerts (the notifier); tests of the console leave it off."""
    housekeeping: bool = True
    heartbeat: bool = True
    metrics: tuple[str, int] | None = None
    """Serve Prometheus metrics on (host, port)."""
    systemd: Systemd | None = None


class Companions:
    def __init__(self, path: Path | str, engine: Engine, options: Options) -> None:
        from evman.engine.watch.health import Health

        self.path, self.engine, self.options = path, engine, options
        self.health: Health = Health()
        self.notifier: Any = None
        self.housekeeper: Housekeeper | None = None
        self.heartbeat: Heartbeat | None = None
        self.metrics: Any = None
        self.metrics_port: int | None = None
        engine.tick_listeners.append(self.health.seen)
        if options.systemd is not None:
            engine.tick_listeners.append(options.systemd.on_tick)

    def start(self) -> Companions:
        """Start each companion; one that cannot start is logged, and the engine runs without it
        (except the metrics endpoint: a port asked for and not served is an error, raised)."""
        from evman.engine.retention import start_housekeeper
        from evman.engine.watch.heartbeat import Heartbeat

        o = self.options
        if o.notify:
            self.notifier = _start_notifier(self.path, self.engine)
        if o.housekeeping:
            self.housekeeper = start_housekeeper(self.path, self.engine)
        if o.heartbeat:
            self.heartbeat = Heartbeat(self.path, self.health).start()
        if o.metrics is not None:
            self._serve_metrics(*o.metrics)
        return self

    def _serve_metrics(self, host: str, port: int) -> None:
        from evman.engine.watch.metrics import Metrics

        keeper, beat = self.housekeeper, self.heartbeat
        self.metrics = Metrics(
            self.path,
            self.health,
            active_runs=self.engine.active_runs,
            housekeeping=(lambda: keeper.totals) if keeper is not None else None,
            heartbeats=(lambda: beat.sent) if beat is not None else None,
            clock=self.engine.clock,
        )
        self.engine.tick_listeners.append(self.metrics.on_tick)
        self.metrics_port = self.metrics.serve(host, port)
        log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)

    def ready(self) -> None:
        """The engine holds its database: tell systemd."""
        if self.options.systemd is not None:
            self.options.systemd.ready(f"engine started on {self.engine.store.url} (pid {self.engine.pid})")

    def stopping(self) -> None:
        if self.options.systemd is not None:
            self.options.systemd.stopping()

    def stop(self, error: str | None = None) -> None:
        """Stop every companion; `error`: the process exits with one (the heartbeat says /fail)."""
        if self.notifier is not None:
            self.notifier.stop()
        if self.housekeeper is not None:
            self.housekeeper.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop(error)
        if self.metrics is not None:
            self.metrics.stop()
        if self.options.systemd is not None:
            self.options.systemd.close()


def _start_notifier(path: Path | str, engine: Engine) -> Any:
    try:
        from evman.engine.paging.notifier import start_notifier  # noqa: F401 (Apprise is there)
    except ImportError:
        return None
    return NotifierStart(path, engine).start()


class NotifierStart:
    """The engine's notifier, started as soon as the database lets it connect: a server that
    restarts while the engine starts delays the pages (they wait as rows), never ends the engine."""

    RETRY_S = 2.0

    def __init__(self, path: Path | str, engine: Engine) -> None:
        self.path, self.engine = path, engine
        self.notifier: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> NotifierStart:
        if not self._try(first=True):
            self._thread = threading.Thread(target=self._retry, name="evman-notifier-start", daemon=True)
            self._thread.start()
        return self

    def _try(self, *, first: bool = False) -> bool:
        from evman.engine.paging.notifier import start_notifier
        from evman.engine.store import StoreError

        try:
            self.notifier = start_notifier(self.path, self.engine)
        except StoreError as exc:
            if first:
                log.warning(
                    "the notifier could not connect (%s); alerts wait as rows, trying again every %g s",
                    exc,
                    self.RETRY_S,
                )
            return False
        if not first:
            log.info("the notifier connected; it delivers the alerts that waited")
        return True

    def _retry(self) -> None:
        while not self._stop.wait(self.RETRY_S) and not self._try():
            pass

    def wake(self) -> None:
        if self.notifier is not None:
            self.notifier.wake()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.notifier is not None:
            self.notifier.stop()
