"""What the engine says after every tick, to whoever watches it (health, systemd, metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Started:
    event: str
    lateness_s: float
    """started_at - scheduled_for (0 at the earliest)."""


@dataclass(frozen=True)
class Finished:
    event: str
    state: str
    duration_s: float | None
    """ended - started; None for a run that never started (missed, skipped)."""


@dataclass(frozen=True)
class TickReport:
    at: datetime
    """The tick's time (the engine's clock)."""
    duration_s: float
    """Wall time the tick took."""
    error: str | None = None
    """Why the tick failed (it could not write its database, or a bug); None when it did its work."""
    fenced: str | None = None
    """Several engines: why this engine was fenced (it stops)."""
    started: tuple[Started, ...] = field(default_factory=tuple)
    finished: tuple[Finished, ...] = field(default_factory=tuple)
    active: int = 0
    """Waiting and running runs this engine holds after the tick."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.fenced is None
