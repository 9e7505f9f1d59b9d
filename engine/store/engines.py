"""The engine row: which process drives the database, its heartbeat, its stop."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from evman.engine.clock import iso
from evman.engine.store.part import Part

HEARTBEAT: str = "UPDATE engine SET heartbeat_at = ? WHERE id = 1 AND pid = ?"

_CLAIM = (
    "INSERT INTO engine (id, pid, host, started_at, heartbeat_at, stopped_at, tick_s, version) "
    "VALUES (1, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, "
    "host = excluded.host, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
    "stopped_at = NULL, tick_s = excluded.tick_s, version = excluded.version"
)


class EngineRow(NamedTuple):
    pid: int | None
    host: str | None
    started_at: str | None
    heartbeat_at: str | None
    stopped_at: str | None


class EnginesPart(Part):
    def engine_row(self) -> EngineRow | None:
        row = self.row("SELECT pid, host, started_at, heartbeat_at, stopped_at FROM engine WHERE id = 1")
        if row is None:
            return None
        return EngineRow(row[0], row[1], row[2], row[3], row[4])

    def claim_engine(
        self, *, pid: int, now: datetime, tick_s: float, version: str, may_take: Callable[[EngineRow], bool]
    ) -> EngineRow | None:
        """Take the engine row if `may_take(current_row)` allows; returns the refusing row, else None."""
        with self.transaction():
            current = self.engine_row()
            if current is not None and not may_take(current):
                return current
            self.execute(_CLAIM, (pid, socket.gethostname(), iso(now), iso(now), tick_s, version))
        return None

    def release_engine(self, *, pid: int, now: datetime) -> None:
        with self.transaction():
            self.execute(
                "UPDATE engine SET stopped_at = ?, heartbeat_at = ? WHERE id = 1 AND pid = ?", (iso(now), iso(now), pid)
            )

    def engines(self) -> list[dict[str, Any]]:
        """The engine of a SQLite file (at most one) in the shape of PostgreSQL's `engines`
        rows; `live` is left to the caller, which knows whether its pid still runs."""
        row = self.engine_row()
        if row is None:
            return []
        running = ",".join(str(r[0]) for r in self.rows("SELECT id FROM runs WHERE state = 'running' ORDER BY id"))
        return [
            {
                "id": 1,
                "host": row.host,
                "pid": row.pid,
                "epoch": None,
                "tags": None,
                "state": "live" if row.stopped_at is None else "stopped",
                "live": None,
                "started_at": row.started_at,
                "heartbeat_at": row.heartbeat_at,
                "lease_until": None,
                "stopped_at": row.stopped_at,
                "taken_over_by": None,
                "reason": None,
                "running": running,
            }
        ]
