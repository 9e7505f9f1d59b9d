"""The requests a console sends (a `requests` row signed with the operator's name, written in a
worker thread) and waits an answer for: the watcher looks for their rows, the console shows
each answer, or says a request is still queued after ANSWER_WAIT_S."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Final, Literal, NamedTuple

from textual.app import App
from textual.message import Message

from evman.engine.store import Store, StoreError

ANSWER_WAIT_S: Final = 15.0
"""How long a request waits for the engine's answer before the console says it is queued."""


class Awaited(NamedTuple):
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


class Said(NamedTuple):
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


class RequestSent(Message):
    def __init__(self, request_id: int, verb: str, target: str) -> None:
        super().__init__()
        self.request_id, self.verb, self.target = request_id, verb, target


class Requests:
    """The console's requests, from the key that sends one to what it says of the answer."""

    def __init__(
        self, app: App[Any], reading: Callable[[], AbstractContextManager[Store]], *, operator: str, readonly: bool
    ) -> None:
        self.app = app
        self.reading = reading
        self.operator = operator
        self.readonly = readonly
        self.awaiting = Awaiting()

    def refuse_if_readonly(self, verb: str, target: str) -> bool:
        if self.readonly:
            self.app.notify(
                f"This console is read-only (--readonly): {verb} {target} was not sent. "
                "Open evman without --readonly to act.",
                title="Read-only",
                severity="warning",
            )
        return self.readonly

    def send(self, verb: str, target: str, args: dict[str, Any] | None) -> None:
        """Write a `requests` row (in a worker thread); RequestSent tells the app its id."""
        if not self.refuse_if_readonly(verb, target):
            write = partial(self._write, verb, target, args)
            self.app.run_worker(write, thread=True, group="requests", exit_on_error=False)

    def _write(self, verb: str, target: str, args: dict[str, Any] | None) -> None:
        try:
            with self.reading() as store:
                request_id = store.add_request(verb, target, args=args, requested_by=self.operator)
        except StoreError as exc:
            self.app.call_from_thread(
                self.app.notify, f"{verb} {target} was not sent: {exc}", title="Request", severity="error"
            )
            return
        self.app.post_message(RequestSent(request_id, verb, target))

    def sent(self, message: RequestSent, *, no_engine_on: str | None) -> bool:
        """Await its answer (True), or say it is queued (no_engine_on: the database no engine drives)."""
        if no_engine_on is not None:
            self.say(queued(message.request_id, message.verb, message.target, no_engine_on))
            return False
        self.awaiting.add(message.request_id, message.verb, message.target)
        return True

    def answered(self, row: dict[str, Any]) -> None:
        if self.awaiting.answered(int(row["id"])):
            self.say(answered(row))

    def expire(self) -> None:
        for request_id, awaited in self.awaiting.expired().items():
            self.say(unanswered(request_id, awaited))

    def say(self, said: Said) -> None:
        self.app.notify(said.text, title=said.title, severity=said.severity, timeout=said.timeout)
