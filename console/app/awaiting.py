"""The requests a console sent and waits an answer for: the watcher looks for their rows, the
console shows each answer, or says a request is still queued after ANSWER_WAIT_S."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

ANSWER_WAIT_S: Final = 15.0
"""How long a request waits for the engine's answer before the console says it is queued."""


@dataclass(frozen=True)
class Awaited:
    verb: str
    target: str
    deadline: float


class Awaiting:
    """Request id -> what was asked; used from the event loop and the watcher thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._awaited: dict[int, Awaited] = {}

    def add(self, request_id: int, verb: str, target: str) -> None:
        with self._lock:
            self._awaited[request_id] = Awaited(verb, target, time.monotonic() + ANSWER_WAIT_S)

    def ids(self) -> list[int]:
        with self._lock:
            return list(self._awaited)

    def answered(self, request_id: int) -> bool:
        """Forget it; False when it was not awaited (another console's, or expired)."""
        with self._lock:
            return self._awaited.pop(request_id, None) is not None

    def expired(self) -> dict[int, Awaited]:
        """Forget, and return, those waited for longer than ANSWER_WAIT_S."""
        now = time.monotonic()
        with self._lock:
            late = {i: a for i, a in self._awaited.items() if a.deadline < now}
            for request_id in late:
                del self._awaited[request_id]
        return late


@dataclass(frozen=True)
class Said:
    """A notification about a request: what the console tells the operator."""

    text: str
    title: str
    severity: Literal["information", "warning", "error"] = "information"
    timeout: float | None = None


def queued(request_id: int, verb: str, target: str, db_name: str) -> Said:
    return Said(
        f"{verb} {target}: queued as request {request_id}. No engine is running on {db_name}; it acts when one starts.",
        "Queued",
        "warning",
        6,
    )


def answered(row: dict[str, Any]) -> Said:
    what = f"{row['verb']} {row['target']}"
    if row["outcome"] == "ok":
        return Said(what + (f": {row['detail']}" if row.get("detail") else ": ok"), "Done", timeout=4)
    return Said(f"{what}: {row['outcome']}", "Refused", "error", 8)


def unanswered(request_id: int, awaited: Awaited) -> Said:
    return Said(
        f"{awaited.verb} {awaited.target}: queued as request {request_id}; the engine has not "
        f"answered in {ANSWER_WAIT_S:g} s.",
        "Waiting",
        "warning",
    )
