"""The events screen's reading of every event: the first page (read ahead as the app starts, so
that it is in the screen's first frame, or else read first and painted at once), then the rest a
page at a time by name. A base of EventsScreen: it posts what it read as RowsLoaded, which
EventsScreen takes (`take_rows`)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, wait
from typing import Any, Final

from textual import work
from textual.message import Message
from textual.worker import get_current_worker

from evman.console.screens.base import EvmanScreen
from evman.console.views import screen_rows
from evman.console.views.screen_rows import FIRST_PAGE

PAGE: Final = 1000
"""Then this many per read: the store's lock is free between pages for other screens' reads."""
FIRST_PAINT_WAIT_S: Final = 1.0
"""The rest of the rows are read once the first page is painted, or after this long."""
AHEAD_WAIT_S: Final = 0.25
"""How long the screen, as it mounts, waits for the first page read ahead before it paints
without it (a database slow to answer): waiting, the reading thread has the interpreter to
itself and is done in a few ms, and the first frame is the one with the rows (painting an
empty table first cost ~15 ms of CPU, the rows' frame waiting behind it)."""

Rows = list[dict[str, Any]]


class RowsLoaded(Message):
    """Rows read by a worker: every event (`complete`), the first page of them (`first`), or
    the ones `asked` for."""

    def __init__(
        self, rows: Rows, *, complete: bool, asked: set[str] | None = None, elapsed_s: float = 0.0, first: bool = False
    ) -> None:
        super().__init__()
        self.rows = rows
        self.complete = complete
        self.asked = asked or set()
        self.elapsed_s = elapsed_s
        self.first = first


class EventPages(EvmanScreen):
    loaded: bool
    """Every event is in (EventsScreen sets it when it takes them all)."""

    def __init__(self) -> None:
        super().__init__()
        self._shown = False
        """The first rows were taken (the first frame with rows is on its way)."""
        self._first_painted = threading.Event()
        self._ahead: Future[Rows] | None = None

    def take_rows(self, message: RowsLoaded) -> None:
        raise NotImplementedError

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        if (message.first or message.complete) and not self._shown:
            self._shown = True
            self.call_after_refresh(self._painted)
        self.take_rows(message)

    def _painted(self) -> None:
        self._first_painted.set()
        self.services.first_frame_shown()

    def read_ahead(self, reading: Future[Rows] | None = None) -> None:
        """Start reading the first page in a thread of its own: the app calls this as it makes
        the screen, before the terminal is set up and the widgets composed, so that the rows
        are usually in when the screen mounts and its first frame shows them (one full paint,
        not an empty table and then a second one). `reading`: the first page already being
        read, since `evman` started (console/app/first_read.py)."""
        if reading is not None:
            self._ahead = reading
            return
        ahead: Future[Rows] = Future()
        services = self.services

        def read() -> None:
            try:
                with services.reading() as store:
                    services.reading_first_rows(store)
                    ahead.set_result(screen_rows.console_event_rows(store, after=None, limit=FIRST_PAGE))
            except Exception as exc:  # load_all raises it in its worker, as its own read would
                ahead.set_exception(exc)

        threading.Thread(target=read, name="evman-first-page", daemon=True).start()
        self._ahead = ahead

    def load_first(self) -> None:
        """On mount: show the first page read ahead (waiting for it up to AHEAD_WAIT_S), and read
        the rest (or all)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            wait([ahead], timeout=AHEAD_WAIT_S)
        if ahead is not None and ahead.done() and ahead.exception() is None:
            rows = ahead.result()
            every = len(rows) < FIRST_PAGE
            self.on_rows_loaded(RowsLoaded(rows, complete=every, first=not every))
            if every:
                return
        self.load_all(ahead)

    @work(thread=True, exclusive=True, group="events-all")
    def load_all(self, ahead: Future[Rows] | None = None) -> None:
        """Every event, a page at a time by name; before the first load is done, the first
        page is painted at once (`ahead`: the first page, read as the app started, which
        load_first showed if it was in by then)."""
        started, worker = time.perf_counter(), get_current_worker()
        rows: Rows = []
        limit = FIRST_PAGE
        while not worker.is_cancelled:
            if ahead is not None:
                page, ahead = ahead.result(), None
            else:
                with self.services.reading() as store:
                    page = screen_rows.console_event_rows(store, after=rows[-1]["name"] if rows else None, limit=limit)
            rows += page
            if len(page) < limit:
                break
            if limit == FIRST_PAGE and not self.loaded:
                if not self._shown:
                    self.post_message(RowsLoaded(list(rows), complete=False, first=True))
                # the rest is read once the first page is painted: before, this thread's reads
                # shared the interpreter with that paint and made it later
                self._first_painted.wait(FIRST_PAINT_WAIT_S)
            limit = PAGE
        if not worker.is_cancelled:
            self.post_message(RowsLoaded(rows, complete=True, elapsed_s=time.perf_counter() - started))
