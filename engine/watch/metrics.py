"""Metrics for Prometheus (`--metrics HOST:PORT`), with prometheus-client, imported only here.

Counted as the engine ticks (its tick listener, in the engine's thread: a few increments): runs
finished by event and state, run durations and start lateness (histograms over all events: one
series per event would grow with the catalogue), each event's last duration, the tick's
duration and failures. Read at scrape time, on the scraper's thread with its own Store: runs
waiting and running by event (from the engine's memory), open alerts by kind, the notifier's
backlog, the heartbeat's age, the engines of the fleet, what housekeeping deleted."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from evman.engine.clock import Clock, SystemClock, iso, parse_iso
from evman.engine.store import Store, StoreError, open_store
from evman.engine.watch.health import Health
from evman.engine.watch.report import TickReport

DURATION_BUCKETS: Final = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600)
LATENESS_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600)
TICK_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (a bare PORT means 127.0.0.1:PORT; [::1]:PORT for IPv6; port 0 picks a free one,
    which the log says); ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text.strip()
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--metrics {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


class Metrics:
    """The engine's metrics; `serve(host, port)` starts the HTTP endpoint."""

    def __init__(
        self,
        db: str | Path | Store,
        health: Health,
        *,
        active_runs: Callable[[], list[Any]] = list,
        housekeeping: Callable[[], Any] | None = None,
        heartbeats: Callable[[], Tally[tuple[str, bool]]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.store = db if isinstance(db, Store) else open_store(db, create=False, readonly=True)
        self.health, self.active_runs, self.housekeeping, self.heartbeats = (
            health,
            active_runs,
            housekeeping,
            heartbeats,
        )
        self.clock = clock or SystemClock()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.finished = Counter(
            "evman_runs_finished", "Runs that finished, by event and state.", ["event", "state"], registry=r
        )
        self.started = Counter("evman_runs_started", "Runs started, by event.", ["event"], registry=r)
        self.duration = Histogram(
            "evman_run_duration_seconds", "How long finished runs took.", buckets=DURATION_BUCKETS, registry=r
        )
        self.last_duration = Gauge(
            "evman_run_last_duration_seconds", "Each event's last finished run's duration.", ["event"], registry=r
        )
        self.lateness = Histogram(
            "evman_run_start_lateness_seconds", "Started at minus scheduled for.", buckets=LATENESS_BUCKETS, registry=r
        )
        self.tick = Histogram(
            "evman_tick_duration_seconds", "How long the engine's ticks take.", buckets=TICK_BUCKETS, registry=r
        )
        self.tick_failures = Counter("evman_tick_failures", "Ticks that could not do their work.", registry=r)
        self._lock = threading.Lock()
        self._server: Any = None
        r.register(_Collector(self))

    def on_tick(self, report: TickReport) -> None:
        """The engine's tick listener: counts only, no I/O."""
        self.tick.observe(report.duration_s)
        if report.error is not None:
            self.tick_failures.inc()
        for started in report.started:
            self.started.labels(started.event).inc()
            self.lateness.observe(started.lateness_s)
        for finished in report.finished:
            self.finished.labels(finished.event, finished.state).inc()
            if finished.duration_s is not None:
                self.duration.observe(finished.duration_s)
                self.last_duration.labels(finished.event).set(finished.duration_s)

    def serve(self, host: str, port: int) -> int:
        """Start the endpoint (a daemon thread); the port it listens on (0 picks a free one)."""
        from prometheus_client import start_http_server

        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.store.close()

    def read(self) -> dict[str, Any]:
        """What the scrape reads from the database (one at a time: the Store is not shared)."""
        with self._lock:
            try:
                return self.store.watch_numbers(str(iso(self.clock.now())))
            except StoreError:
                return {}


class _Collector:
    """The metrics read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self.m
        active = GaugeMetricFamily(
            "evman_runs_active", "Runs waiting or running now, by event and state.", labels=["event", "state"]
        )
        for (event, state), count in sorted(Tally((r.event, r.state.value) for r in m.active_runs()).items()):
            active.add_metric([event, state], count)
        yield active
        numbers = m.read()
        alerts = GaugeMetricFamily("evman_alerts_open", "Open alerts, by kind.", labels=["kind"])
        for kind, count in sorted(numbers.get("open_alerts", {}).items()):
            alerts.add_metric([kind], count)
        yield alerts
        yield GaugeMetricFamily(
            "evman_notifier_backlog", "Alerts due to be sent and not sent yet.", value=numbers.get("backlog", 0)
        )
        engines = GaugeMetricFamily("evman_engines", "Engines of this database, by state.", labels=["state"])
        for state, count in sorted(numbers.get("engines", {}).items()):
            engines.add_metric([state], count)
        yield engines
        beat = parse_iso(numbers.get("heartbeat_at"))
        if beat is not None:
            age = (m.clock.now() - beat).total_seconds()
            yield GaugeMetricFamily(
                "evman_heartbeat_age_seconds", "Seconds since the engine last recorded its heartbeat.", value=age
            )
        since = m.health.seconds_since_ok()
        if since is not None:
            yield GaugeMetricFamily(
                "evman_last_good_tick_age_seconds",
                "Seconds since this engine's last tick that did its work.",
                value=since,
            )
        yield from self._housekeeping()
        yield from self._heartbeats(CounterMetricFamily)

    def _housekeeping(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        totals = self.m.housekeeping() if self.m.housekeeping is not None else None
        if totals is None:
            return
        deleted = CounterMetricFamily(
            "evman_housekeeping_deleted", "What housekeeping deleted, by kind.", labels=["kind"]
        )
        for kind, count in totals.counts().items():
            if kind != "log_bytes":
                deleted.add_metric([kind], count)
        yield deleted
        yield CounterMetricFamily(
            "evman_housekeeping_log_bytes", "Bytes of run logs housekeeping deleted.", value=totals.log_bytes
        )
        yield CounterMetricFamily("evman_housekeeping_cpu_seconds", "CPU time housekeeping spent.", value=totals.cpu_s)

    def _heartbeats(self, family: Any) -> Iterator[Any]:
        if self.m.heartbeats is None:
            return
        sent = family(
            "evman_heartbeat_pings", "Heartbeat pings sent, by signal and result.", labels=["signal", "delivered"]
        )
        for (signal, delivered), count in sorted(self.m.heartbeats().items()):
            sent.add_metric([signal, str(delivered).lower()], count)
        yield sent
