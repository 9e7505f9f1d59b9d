"""The watchers in the engine's own process: the heartbeat against a real HTTP receiver, systemd's
notify socket as a real UNIX datagram socket, `evman engines --check` as a monitor runs it."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evman.engine.clock import iso
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from evman.engine.watch.health import Health
from evman.engine.watch.heartbeat import Heartbeat, fail_url
from evman.engine.watch.report import TickReport
from evman.engine.watch.systemd import Systemd
from tests.conftest import load_text
from tests.engine_cli import cli
from tests.outside import found
from tests.receivers import HttpReceiver

DEFS = """
    [defaults]
    timezone = "UTC"
    heartbeat = "{url}"
    [[event]]
    name = "quick"
    run = "true"
"""


@pytest.fixture
def checks():
    with HttpReceiver() as receiver:
        yield receiver


def loaded(store: Store, tmp_path: Path, url: str) -> None:
    load_text(store, DEFS.format(url=url), tmp_path, datetime.now(UTC))


def test_fail_url_follows_the_healthchecks_convention() -> None:
    assert fail_url("https://hc-ping.com/abc") == "https://hc-ping.com/abc/fail"
    assert fail_url("https://hc.example/ping/abc/?rid=1") == "https://hc.example/ping/abc/fail?rid=1"


def test_the_heartbeat_pings_while_healthy_and_fails_when_ticks_fail(store, tmp_path, checks) -> None:
    loaded(store, tmp_path, checks.url("/ping/k1", scheme="http"))
    health = Health(failing_after_s=0.0)
    beat = Heartbeat(store, health)
    assert beat.beat() is None and checks.posts == []  # no tick yet: nothing to say
    health.seen(TickReport(datetime.now(UTC), 0.001))
    assert found(beat.beat()).ok
    health.seen(TickReport(datetime.now(UTC), 0.001, error="cannot record its work: disk full"))
    assert found(beat.beat()).ok is False
    assert checks.wait_for(2)
    assert [p.path for p in checks.posts] == ["/ping/k1", "/ping/k1/fail"]
    assert "disk full" in checks.posts[1].body


def test_an_engine_that_cannot_write_its_database_pings_fail(store, tmp_path, checks, monkeypatch) -> None:
    """A real engine whose every flush finds the database locked by another writer."""
    loaded(store, tmp_path, checks.url("/ping/k2", scheme="http"))
    monkeypatch.setenv("EVMAN_BUSY_TIMEOUT_MS", "20")
    engine = Engine(open_store(store.path), tick_s=0.05, logs_dir=tmp_path / "logs")
    health = Health(failing_after_s=0.2)
    engine.tick_listeners.append(health.seen)
    engine.start()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    thread = threading.Thread(target=engine.run, daemon=True)
    try:
        thread.start()
        time.sleep(0.3)
        assert found(Heartbeat(store, health).beat()).ok
        blocker.execute("BEGIN IMMEDIATE")
        engine.wake()
        deadline = time.monotonic() + 20
        while health.verdict().ok is not False and time.monotonic() < deadline:
            engine.wake()
            time.sleep(0.05)
        verdict = Heartbeat(store, health).beat()
        assert verdict is not None and verdict.ok is False and "locked" in verdict.why
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        engine.stop()
        thread.join(10)
        engine.executors.shutdown(wait_s=0)
    assert checks.wait_for(2) and checks.posts[-1].path == "/ping/k2/fail"


def test_a_hanging_heartbeat_never_holds_up_the_tick(store, tmp_path, checks) -> None:
    loaded(store, tmp_path, checks.url("/ping/k3", scheme="http"))
    checks.gate = threading.Event()  # the receiver takes the ping and never answers
    engine = Engine(open_store(store.path), tick_s=0.02, logs_dir=tmp_path / "logs")
    health = Health()
    ticks: list[float] = []
    engine.tick_listeners += [health.seen, lambda report: ticks.append(time.monotonic())]
    engine.start()
    beat = Heartbeat(open_store(store.path), health)
    thread = threading.Thread(target=engine.run, daemon=True)
    try:
        thread.start()
        time.sleep(0.2)
        beat.start()
        assert checks.wait_arrived(1)  # the ping hangs now
        before = len(ticks)
        time.sleep(0.5)
        assert len(ticks) - before >= 5  # the loop went on ticking meanwhile
    finally:
        engine.stop()
        thread.join(10)
        engine.executors.shutdown(wait_s=0)
        checks.gate.set()
        beat.stop(wait_s=2)


def test_exiting_with_an_error_pings_fail_once(store, tmp_path, checks) -> None:
    loaded(store, tmp_path, checks.url("/ping/k4", scheme="http"))
    Heartbeat(store, Health()).stop(error="fenced: another engine took over")
    assert checks.wait_for(1)
    assert checks.posts[0].path == "/ping/k4/fail" and "fenced" in checks.posts[0].body


def datagram_socket(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(name)
    sock.settimeout(0.05)
    return sock


def drain(sock: socket.socket, at_most_s: float = 1.0) -> list[str]:
    """What the socket holds, read until it is quiet for its timeout or for `at_most_s` (a live
    engine that ticks faster than the timeout is never quiet)."""
    lines: list[str] = []
    deadline = time.monotonic() + at_most_s
    while time.monotonic() < deadline:
        try:
            lines += sock.recv(4096).decode().split("\n")
        except TimeoutError:
            break
    return lines


def test_systemd_from_the_environment_abstract_socket_and_watchdog() -> None:
    name = f"evman-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = datagram_socket("\0" + name)
    try:
        assert Systemd.from_env({}) is None
        notify = Systemd.from_env({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "3000000"})
        assert notify is not None and notify.watchdog_s == 3.0
        notify.ready("engine started")
        assert drain(sock)[:2] == ["READY=1", "STATUS=engine started"]
        other = Systemd.from_env({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
        assert other is not None and other.watchdog_s is None  # the watchdog is for another process
    finally:
        sock.close()


def test_a_wedged_tick_loop_stops_the_watchdog(store, tmp_path) -> None:
    """WATCHDOG=1 comes from the tick loop: while the loop is stuck, none comes (systemd would
    restart the service after WatchdogSec=); when it goes on, they come again."""
    sock = datagram_socket(str(tmp_path / "notify"))
    engine = Engine(open_store(store.path), tick_s=0.02, logs_dir=tmp_path / "logs")
    notify = Systemd(str(tmp_path / "notify"), watchdog_s=0.06)
    wedge = threading.Event()
    wedge.set()
    engine.tick_listeners += [notify.on_tick, lambda report: None if wedge.wait() else None]
    engine.start()
    thread = threading.Thread(target=engine.run, daemon=True)
    try:
        thread.start()
        time.sleep(0.5)
        assert drain(sock).count("WATCHDOG=1") >= 3
        wedge.clear()  # the next tick's listener blocks: the loop is wedged
        time.sleep(0.2)
        drain(sock)
        time.sleep(0.5)
        assert drain(sock).count("WATCHDOG=1") == 0
        wedge.set()
        time.sleep(0.5)
        assert drain(sock).count("WATCHDOG=1") >= 3
    finally:
        wedge.set()
        engine.stop()
        thread.join(10)
        engine.executors.shutdown(wait_s=0)
        sock.close()


def test_engines_check_exit_codes(tmp_path) -> None:
    db = tmp_path / "evman.db"
    store = open_store(db)
    load_text(store, DEFS.format(url="http://127.0.0.1:9/x"), tmp_path, datetime.now(UTC))
    done = cli("engines", "--check", "--db", str(db))
    assert done.returncode == 1 and "no live engine" in done.stdout
    engine = Engine(store, logs_dir=tmp_path / "logs")  # a live engine: this process, its heartbeat now
    engine.start()
    try:
        done = cli("engines", "--check", "--db", str(db), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"status": "ok"' in done.stdout
        late = datetime.now(UTC) - timedelta(minutes=5)
        with store.transaction():
            store.execute(
                "INSERT INTO runs (id, event, state, trigger, scheduled_for, created_at, due_by) "
                "VALUES (99, 'quick', 'waiting', 'schedule', ?, ?, ?)",
                (iso(late), iso(late), iso(late)),
            )
        done = cli("engines", "--check", "--max-age", "1m", "--db", str(db))
        assert done.returncode == 2 and "run:99 (quick) waiting" in done.stdout
        assert cli("engines", "--check", "--max-age", "10m", "--db", str(db)).returncode == 0
    finally:
        engine.executors.shutdown(wait_s=0)
        store.release_engine(pid=engine.pid, now=datetime.now(UTC))
    assert cli("engines", "--check", "--db", str(db)).returncode == 1  # stopped
    store.close()
