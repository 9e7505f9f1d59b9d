"""The console's database opened, and the first things it shows read, before Textual is imported:
`evman` opens the store, then reads the watcher's first look and the first page of events in a
thread of its own while the main thread imports Textual and the screens (~150 ms), so that the
events screen finds its rows waiting when it mounts. Before, the same reads started once the app
was made and the screen often waited for them (0-30 ms on a busy machine) or shared the
interpreter with its first frame. Nothing here imports Textual."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from evman.console.views import screen_rows
from evman.engine.store import Store, open_store

Look = tuple[int, dict[str, Any]]
"""The watcher's look: the data version and the marks it compares (see watcher.py)."""
Rows = list[dict[str, Any]]


def first_look(store: Store, *, full: bool) -> Look:
    """What the watcher compares its next look with; `full`: every event's marks (another engine
    drives the database), else the definitions' version only."""
    return store.data_version(), store.watch_marks(full=full)


def first_page(store: Store) -> Rows:
    return screen_rows.console_event_rows(store, after=None, limit=screen_rows.FIRST_PAGE)


class FirstRead:
    """The console's store (opened here: a StoreError is the caller's, before any terminal is
    taken), the lock its threads take turns with, and the two reads in a thread: `look` first,
    then `rows`, under the lock, so that a change committed after the rows were read is one the
    watcher sees. A failed read is each future's exception (the screen's worker raises it)."""

    def __init__(self, target: Path | str, *, readonly: bool) -> None:
        self.store = open_store(target, create=False, readonly=readonly)
        self.lock = threading.Lock()
        self.look: Future[Look] = Future()
        self.rows: Future[Rows] = Future()
        threading.Thread(target=self._read, name="evman-first-page", daemon=True).start()

    def _read(self) -> None:
        with self.lock:
            try:
                # no engine here yet: the console has not started one (the app's mode is "starting")
                self.look.set_result(first_look(self.store, full=True))
                self.rows.set_result(first_page(self.store))
            except Exception as exc:  # the screen's worker raises it, as its own read would
                for future in (self.look, self.rows):
                    if not future.done():
                        future.set_exception(exc)
