"""One engine on a SQLite database: the `engine` row (pid, host, heartbeat), claimed at start,
refused while another live engine holds it, beaten every few seconds, released at stop. (Several
engines on PostgreSQL use membership.py instead.)"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from evman.engine.clock import Clock, iso, parse_iso
from evman.engine.running.procs import pid_alive
from evman.engine.store import Batch, EngineRow, Store

HEARTBEAT_EVERY_S: Final = 5.0
STALE_AFTER_S: Final = 30.0
"""A heartbeat older than this: its engine is gone, whoever starts now takes the row."""


class EngineBusy(RuntimeError):
    """Another live engine drives this database."""


class Sole:
    """This engine's claim on a SQLite database (the `engine` row)."""

    def __init__(self, store: Store, clock: Clock, *, pid: int, host: str, tick_s: float, version: str) -> None:
        self.store = store
        self.clock = clock
        self.pid = pid
        self.host = host
        self.tick_s = tick_s
        self.version = version
        self.last_beat: datetime | None = None
        self._last_id = 0

    def claim(self, now: datetime) -> None:
        """Take the engine row; EngineBusy, saying whose it is and what to do, while another
        live engine holds it."""
        refusing = self.store.claim_engine(
            pid=self.pid, now=now, tick_s=self.tick_s, version=self.version, may_take=self.may_take
        )
        if refusing is not None:
            age = (now - (parse_iso(refusing.heartbeat_at) or now)).total_seconds()
            raise EngineBusy(
                f"{self.store.path} is driven by another engine (pid {refusing.pid} on "
                f"{refusing.host}, heartbeat {age:.0f} s ago). Stop it, or use --db PATH."
            )
        self.last_beat = now
        self._last_id = self.store.max_run_id()

    def next_id(self) -> int:
        """A new run id: the one engine of the file numbers its runs (after what it found)."""
        self._last_id += 1
        return self._last_id

    def may_take(self, row: EngineRow) -> bool:
        """Whether the row's engine is gone: stopped, this very process, a pid gone on this
        host, or silent for STALE_AFTER_S."""
        if row.stopped_at is not None or row.pid is None:
            return True
        if row.pid == self.pid and row.host == self.host:
            return True
        if row.host == self.host and not pid_alive(int(row.pid)):
            return True
        beat = parse_iso(row.heartbeat_at)
        return beat is None or (self.clock.now() - beat).total_seconds() > STALE_AFTER_S

    def beat(self, batch: Batch, now: datetime) -> None:
        """A heartbeat with this tick's writes, every HEARTBEAT_EVERY_S."""
        if self.last_beat is None or (now - self.last_beat).total_seconds() >= HEARTBEAT_EVERY_S:
            self.last_beat = now
            batch.heartbeat(iso(now), self.pid)

    def release(self, now: datetime) -> None:
        self.store.release_engine(pid=self.pid, now=now)
