"""LISTEN on PostgreSQL: a thread with a connection of its own that wakes its owner on each
NOTIFY evman. Only a hint: every engine and console also polls, so a lost notification, a
reconnect or `listen=false` (a transaction pooler) delays nothing past one tick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from evman.engine.store.postgres import split_url

CHANNEL: Final = "evman"
RETRY_S: Final = (0.2, 0.5, 1.0, 2.0, 5.0)

log = logging.getLogger("evman.listen")


class Listener:
    """`Listener(url, on_notice).start()`; on_notice(payload) runs in the listener's thread."""

    def __init__(self, url: str, on_notice: Callable[[str], None]) -> None:
        self.url, _ = split_url(url)
        self.on_notice = on_notice
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evman-listen", daemon=True)
        self._conn: Any = None
        self.heard = 0

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)

    def _loop(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=5, application_name="evman listen"
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    self.on_notice("listening")  # anything missed while (re)connecting: look now
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self.heard += 1
                            self.on_notice(notice.payload)
            except psycopg.Error as exc:
                wait = RETRY_S[min(failures, len(RETRY_S) - 1)]
                failures += 1
                if failures in (1, 10):
                    log.info("LISTEN connection lost (%s); trying again in %g s", exc, wait)
                self._stop.wait(wait)
