"""The engine process's health, from its tick reports: what the heartbeat and the metrics say.

Ages are on the monotonic clock (real time): a loop that stopped ticking is noticed however the
engine's own clock moves."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

from evman.engine.watch.report import TickReport

FAILING_AFTER_S: Final = 60.0
"""Ticks that keep failing for this long (the database cannot be written) make the engine unwell."""


@dataclass(frozen=True)
class Verdict:
    ok: bool | None
    """True: healthy, ping. False: unwell, ping /fail. None: say nothing (no tick yet, or the
    loop is wedged: silence is what a dead-man's switch is for)."""
    why: str


class Health:
    def __init__(self, *, failing_after_s: float = FAILING_AFTER_S, wedged_after_s: float = 120.0) -> None:
        self.failing_after_s = failing_after_s
        self.wedged_after_s = wedged_after_s
        self._lock = threading.Lock()
        self.last_report: TickReport | None = None
        self.last_seen: float | None = None
        self.last_ok: float | None = None
        self.failing_since: float | None = None
        self.fenced: str | None = None
        self.exit_error: str | None = None
        self.ticks = 0
        self.failures = 0

    def seen(self, report: TickReport) -> None:
        """The engine's tick listener: a few assignments under a lock, never I/O."""
        now = time.monotonic()
        with self._lock:
            self.last_report, self.last_seen = report, now
            self.ticks += 1
            if report.fenced is not None:
                self.fenced = report.fenced
            if report.error is None:
                self.last_ok, self.failing_since = now, None
            else:
                self.failures += 1
                self.failing_since = self.failing_since or now

    def exited(self, why: str) -> None:
        """The process is ending with an error."""
        with self._lock:
            self.exit_error = why

    def verdict(self) -> Verdict:
        now = time.monotonic()
        with self._lock:
            if self.exit_error is not None:
                return Verdict(False, f"evman exited with an error: {self.exit_error}")
            if self.fenced is not None:
                return Verdict(False, f"engine fenced: {self.fenced}")
            if self.failing_since is not None and now - self.failing_since >= self.failing_after_s:
                error = self.last_report.error if self.last_report is not None else "unknown"
                return Verdict(False, f"ticks failing for {now - self.failing_since:.0f} s: {error}")
            if self.last_seen is None:
                return Verdict(None, "no tick yet")
            if now - self.last_seen >= self.wedged_after_s:
                return Verdict(None, f"no tick for {now - self.last_seen:.0f} s")
            return Verdict(True, "ok")

    def seconds_since_ok(self) -> float | None:
        with self._lock:
            return None if self.last_ok is None else time.monotonic() - self.last_ok
