"""systemd's notify protocol (sd_notify(3)), when NOTIFY_SOCKET is set: READY=1 once the engine
holds its database, WATCHDOG=1 from the tick loop (a wedged loop stops sending, and systemd
restarts the service after WatchdogSec=), STATUS= lines, STOPPING=1.

The protocol is one datagram of KEY=VALUE lines to a Unix socket, documented as stable; systemd
asks daemons to speak it themselves rather than link libsystemd, so it is written here (the
Python packages that wrap it are unmaintained or need libsystemd)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Final

from evman.engine.watch.report import TickReport

log = logging.getLogger("evman.systemd")

STATUS_EVERY_S: Final = 10.0


class Systemd:
    def __init__(self, address: str, watchdog_s: float | None = None) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = watchdog_s
        """WatchdogSec= as systemd passed it (WATCHDOG_USEC); None: no watchdog wanted."""
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)  # a full queue (a reader that stopped reading) drops, never blocks the tick
        self._last_watchdog = 0.0
        self._last_status = 0.0
        self._lock = threading.Lock()
        self.broken = False
        self.dropped = 0
        """Messages dropped because the socket's queue was full."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Systemd | None:
        """From NOTIFY_SOCKET (and WATCHDOG_USEC, when WATCHDOG_PID is unset or names us); None without."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if not address or address[0] not in "/@":
            return None
        watchdog = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1e6
        return cls(address, watchdog)

    def send(self, *lines: str) -> bool:
        message = "\n".join(lines).encode()
        with self._lock:
            try:
                self._sock.sendto(message, self.address)
                return True
            except BlockingIOError:
                self.dropped += 1
                return False
            except OSError as exc:
                if not self.broken:
                    log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
                self.broken = True
                return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def on_tick(self, report: TickReport) -> None:
        """The engine's tick listener: WATCHDOG=1 at a third of WatchdogSec=, STATUS= every 10 s."""
        now = time.monotonic()
        lines = []
        if self.watchdog_s is not None and now - self._last_watchdog >= self.watchdog_s / 3:
            self._last_watchdog = now
            lines.append("WATCHDOG=1")
        if now - self._last_status >= STATUS_EVERY_S:
            self._last_status = now
            lines.append(f"STATUS={status_line(report)}")
        if lines:
            self.send(*lines)

    def close(self) -> None:
        self._sock.close()


def status_line(report: TickReport) -> str:
    if report.fenced:
        return f"fenced: {report.fenced}"
    if report.error:
        return f"tick failing: {report.error}"[:200]
    return f"ticking; {report.active} run(s) waiting or running; last tick {report.duration_s * 1000:.1f} ms"
