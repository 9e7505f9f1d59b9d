"""How a run (or its `prepare` step) ended, as the executors tell the engine."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from evman.engine.running.supervisor_client import ExitRecord


class Outcome(NamedTuple):
    """How a run (or its `prepare` step) ended. A named tuple: every callable of a burst makes
    one in its worker thread, and a frozen dataclass took three times as long (each field set
    through object.__setattr__), time the next callables waited for the GIL."""

    run_id: int
    phase: str
    """"main" or "prepare"."""
    exit_code: int | None
    ended_at: datetime
    error: str | None = None
    """Why it could not run or crashed, in words; None when it ran to an exit code."""
    killed_by: str | None = None
    """Who or what killed it (operator, runtime max), or None."""
    since_ns: int | None = None
    """A command's log mtime stamped just before it started: the file system's own clock,
    which `fresh` output checks compare with (verify_outputs(since_ns=...))."""
    record: ExitRecord | None = None
    """What its supervisor wrote in the exit file (resource use, real start and end)."""


def outcome_of(record: ExitRecord, now: datetime, killed_by: str | None = None) -> Outcome:
    """The Outcome a supervisor's exit record stands for (ended `now`, by the engine's clock)."""
    code = record.exit_code
    error = f"ended by signal {record.signal or -code}" if code < 0 else None
    return Outcome(record.run_id, record.phase, code, now, error, killed_by, record.since_ns, record)
