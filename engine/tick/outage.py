"""The database out of reach, as the engine says it: once when it starts, now and then while it
lasts, and once when it ends; not a line per tick, though the engine retries every tick."""

from __future__ import annotations

import logging
import time
from typing import Final

from evman.engine.store import StoreError

log = logging.getLogger("evman.engine")


class Outage:
    """The database out of reach, said once when it starts, every SAY_EVERY_S while it lasts,
    and once when it ends (not a line per tick: the engine retries every tick)."""

    SAY_EVERY_S: Final = 30.0

    def __init__(self) -> None:
        self.since: float | None = None
        self.ticks = 0
        self._said = 0.0

    def failed(self, exc: StoreError) -> None:
        now = time.monotonic()
        self.ticks += 1
        if self.since is None:
            self.since = self._said = now
            log.error("cannot reach the database, the engine keeps its runs and retries every tick: %s", exc)
        elif now - self._said >= self.SAY_EVERY_S:
            self._said = now
            log.error("still cannot reach the database after %.0f s (%d ticks): %s", now - self.since, self.ticks, exc)

    def ended(self) -> None:
        if self.since is None:
            return
        log.warning(
            "the database answers again after %.1f s; %d tick(s) could not write, their work is written now",
            time.monotonic() - self.since,
            self.ticks,
        )
        self.since, self.ticks = None, 0
