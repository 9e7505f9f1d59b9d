"""`evman --no-ui` as systemd, a healthchecks.io-style service and Prometheus see it: a real UNIX
datagram socket as NOTIFY_SOCKET, a real HTTP receiver as the heartbeat URL, a real scrape of the
metrics endpoint, and its JSON log lines."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.engine_cli import load_defs, log_of, start_engine_process
from tests.outside import wait_until
from tests.receivers import HttpReceiver

DEFS = """
    [defaults]
    timezone = "UTC"
    heartbeat = {{ url = "{url}", every = "5s" }}
    [[event]]
    name = "tick"
    run = "true"
    schedule = "every 1 seconds"
"""


class Datagrams:
    """A NOTIFY_SOCKET read promptly in a thread, as systemd reads it: every datagram, as lines."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.seen: list[list[str]] = []
        self.reading = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.reading:
            try:
                self.seen.append(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                continue

    def wait_for(self, line: str, count: int = 1, timeout_s: float = 30.0) -> bool:
        try:
            return bool(wait_until(lambda: sum(1 for m in list(self.seen) if line in m) >= count, timeout=timeout_s))
        except AssertionError:
            return False

    def lines(self, prefix: str) -> list[str]:
        return [line for message in list(self.seen) for line in message if line.startswith(prefix)]

    def close(self) -> None:
        self.reading = False
        self.thread.join(2)
        self.sock.close()


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else ""): value
        for family in text_string_to_metric_families(text)
        for name, labels, value, *_ in family.samples
    }


def metrics_port(log: Path) -> int | None:
    found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
    return int(found.group(1)) if found else None


def test_the_headless_engine_tells_systemd_its_heartbeat_and_prometheus(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    notify = Datagrams(tmp_path / "notify.sock")
    with HttpReceiver() as checks:
        load_defs(db, DEFS.format(url=checks.url("/ping/0f1e-check", scheme="http")), tmp_path, datetime.now(UTC))
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "900000"}
        proc = start_engine_process(db, "--tick", "0.2", "--metrics", "127.0.0.1:0", "--log-format", "json", env=env)
        try:
            assert notify.wait_for("READY=1"), notify.seen
            assert notify.wait_for("WATCHDOG=1", count=3), notify.seen  # every 0.3 s: a third of 0.9 s
            assert any("evman.db" in s for s in notify.lines("STATUS=")), notify.seen
            assert checks.wait_for(1, timeout_s=20)
            assert checks.posts[0].path == "/ping/0f1e-check" and checks.posts[0].body == "ok"
            port = wait_until(lambda: metrics_port(log_of(db)), timeout=20)
            seen = wait_until(
                lambda: (m := scrape(port)).get("evman_runs_finished_total{event=tick,state=succeeded}", 0) >= 1 and m,
                timeout=30,
            )
            assert seen["evman_engines{state=live}"] == 1
            assert seen["evman_tick_duration_seconds_count"] > 0
            assert seen["evman_run_start_lateness_seconds_count"] >= 1
            assert seen["evman_notifier_backlog"] == 0
            assert 0 <= seen["evman_heartbeat_age_seconds"] < 30
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    assert notify.wait_for("STOPPING=1", timeout_s=5), notify.seen
    notify.close()
    lines = [json.loads(line) for line in log_of(db).read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("engine started on") for line in lines)
