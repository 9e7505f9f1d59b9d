"""WAL checkpoints in a thread of their own, so that no commit of the engine pays for one.

SQLite in WAL mode copies the log back into the database file (a checkpoint) at the end of
the commit that takes the log past 1,000 pages: a write of ~0.5 MB and two fsyncs, 3-5 ms on
this machine's disk, inside whichever tick happened to commit then (the tail of bench W3).
The engine's connection instead leaves checkpoints to this thread: each commit pokes it, and
`delay_s` later it runs a PASSIVE checkpoint (it never waits for a lock, and neither does any
writer or reader for it) on a connection of its own: one for all the commits of a burst, at
most one per `delay_s`. The sqlite3 module lets go of the GIL while SQLite works, so the
engine's thread goes on meanwhile.

If this thread could not keep up (a reader holding an old snapshot for long), the engine's
connection still checkpoints by itself once the log passes SAFETY_NET_PAGES."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

log = logging.getLogger("evman.store")

DELAY_S: Final = 0.25
"""A checkpoint this long after the commit that asked for it (each is two fsyncs, whatever it
copies: the commits of a burst share one)."""
SAFETY_NET_PAGES: Final = 10_000
"""The engine's own connection checkpoints once the log passes this many pages (~40 MB)."""


class Checkpointer:
    """One thread and one connection that checkpoint the WAL of `path` after writes."""

    def __init__(self, path: Path, delay_s: float = DELAY_S) -> None:
        self.delay_s = delay_s
        self.done = 0
        """Checkpoints run so far (for tests)."""
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._wrote = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evman-checkpoints", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """A commit added to the log: checkpoint soon (a set Event: about a microsecond)."""
        self._wrote.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        self._stop.set()
        self._wrote.set()
        self._thread.join(timeout=10)
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._wrote.wait()
            if self._stop.wait(self.delay_s):
                return
            self._wrote.clear()
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error as exc:  # a full disk, a removed file: the commits go on, and say it
            log.warning("WAL checkpoint failed (the engine's own commits will checkpoint instead): %s", exc)
