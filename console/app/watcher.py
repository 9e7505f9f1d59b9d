"""The console's watcher thread: once a second (ten times a second while requests wait for
their answers) it looks at the engine row, the answers to the console's requests and, when
another engine drives the database, what that engine's commits changed; it tells the app
with messages."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Final

from textual.message import Message

from evman.console.app.first_read import Look, first_look
from evman.console.mailbox import engine_is_live
from evman.console.screens.services import DatabaseChanged
from evman.console.views.screen_rows import changed_events
from evman.engine.clock import Clock
from evman.engine.store import Store, StoreError, is_pg_store

log = logging.getLogger("evman.console")

WATCH_EVERY_S: Final = 1.0
WATCH_PENDING_EVERY_S: Final = 0.1


class EngineSeen(Message):
    """The watcher's look at the engine row (once a second)."""

    def __init__(
        self, pid: int | None, host: str | None, heartbeat_at: str | None, live: bool, engines: int | None = None
    ) -> None:
        super().__init__()
        self.pid, self.host, self.heartbeat_at, self.live = pid, host, heartbeat_at, live
        self.engines = engines
        """Live engines, where several share the database (PostgreSQL)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineSeen)


class RequestAnswered(Message):
    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__()
        self.row = row


class Watcher:
    """`run()` is the thread's body; `wake()` looks again at once (a request was sent)."""

    def __init__(
        self,
        reading: Callable[[], AbstractContextManager[Store]],
        clock: Clock,
        post: Callable[[Message], object],
        pending_ids: Callable[[], list[int]],
        *,
        engine_here: Callable[[], bool],
    ) -> None:
        self.reading, self.clock, self.post = reading, clock, post
        self.pending_ids, self.engine_here = pending_ids, engine_here
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._first: Future[Look] | None = None

    def look_first(self, store: Store) -> None:
        """Take the first look's data version and marks now, in the thread that reads the
        first rows (the events screen's, before it reads them, under the same lock): a change
        another connection commits after those rows were read is then seen, however late the
        watcher starts (after the first frame)."""
        taken: Future[Look] = Future()
        taken.set_result(first_look(store, full=not self.engine_here()))
        self._first = taken

    def looked_first(self, look: Future[Look]) -> None:
        """The first look, taken as `look_first` would, before the first rows were read as `evman`
        started (first_read.py); the watcher waits for it as it starts."""
        self._first = look

    def run(self) -> None:
        version, marks = self._first_look()
        while not self._stopping.is_set():
            try:
                version, marks = self._look(version, marks)
            except (StoreError, sqlite3.Error) as exc:
                log.warning("console watcher could not read the database: %s", exc)
            self._wake.wait(WATCH_PENDING_EVERY_S if self.pending_ids() else WATCH_EVERY_S)
            self._wake.clear()

    def _first_look(self) -> tuple[int | None, dict[str, Any] | None]:
        """The first look, or none (it failed: the first look of run() is then the baseline)."""
        if self._first is None:
            return None, None
        try:
            return self._first.result()
        except (StoreError, sqlite3.Error):
            return None, None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _look(self, version: int | None, marks: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None]:
        """One look; the data version and marks to compare the next one with."""
        ids = self.pending_ids()
        with self.reading() as store:
            row = store.engine_row()
            live = engine_is_live(store, now=self.clock.now())
            engines = store.live_engine_count() if is_pg_store(store) else None
            answered = store.pending_requests(ids)
            now_version = store.data_version()
            new_marks = marks
            if now_version != version:  # the marks of every event only for another engine's work
                new_marks = store.watch_marks(full=not self.engine_here())
        self.post(
            EngineSeen(
                row.pid if row else None, row.host if row else None, row.heartbeat_at if row else None, live, engines
            )
        )
        for answer in answered:
            self.post(RequestAnswered(answer))
        if marks is not None and new_marks is not marks and new_marks is not None:
            events, definitions = changed_events(marks, new_marks)
            if events or definitions:
                self.post(DatabaseChanged(events, definitions=definitions))
        return now_version, new_marks
