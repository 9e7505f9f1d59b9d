"""`[defaults] heartbeat`: a dead-man's-switch URL, pinged from a thread of its own.

The healthchecks.io convention: a request to the URL every interval while the engine is
healthy, to URL/fail when it is fenced, cannot write its database, or exits with an error; and
silence when its loop is wedged or it died, which the service notices by itself. A POST, whose
body says why (healthchecks.io shows it). Nothing here ever runs in the tick: the engine's
listener only updates Health."""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from evman.engine.definitions.masking import mask_ping_url
from evman.engine.paging.rules import defaults_from_json
from evman.engine.store import Store, StoreError, open_store
from evman.engine.watch.health import Health, Verdict

log = logging.getLogger("evman.heartbeat")

TIMEOUT_S: Final = 10.0


def fail_url(url: str) -> str:
    """healthchecks.io's failure signal: the check's URL with /fail after its path."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


class Heartbeat:
    """Pings `[defaults] heartbeat` every heartbeat.every while the engine is healthy (read
    again every beat: a load that changes it takes effect at the next)."""

    def __init__(self, db: str | Path | Store, health: Health, *, timeout_s: float = TIMEOUT_S) -> None:
        self._owns_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else open_store(db, create=False)
        self.health = health
        self.timeout_s = timeout_s
        self.sent: Counter[tuple[str, bool]] = Counter()
        """(signal "ok"/"fail", delivered) -> how many pings, for the metrics."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def settings(self) -> tuple[str | None, float]:
        try:
            defaults = defaults_from_json(self.store.defaults_json())
        except StoreError as exc:
            log.warning("heartbeat: cannot read [defaults] (%s); trying again next beat", exc)
            return None, 60.0
        return defaults.heartbeat_url, defaults.heartbeat_every_s

    def beat(self) -> Verdict | None:
        """Ping once, as the engine's health says; the verdict sent (None: nothing to ping)."""
        url, _every = self.settings()
        verdict = self.health.verdict()
        if url is None or verdict.ok is None:
            return None
        self._ping(url if verdict.ok else fail_url(url), verdict)
        return verdict

    def _ping(self, url: str, verdict: Verdict) -> None:
        with self._lock:
            request = urllib.request.Request(url, data=verdict.why.encode()[:10_000], method="POST")
            request.add_header("User-Agent", "evman heartbeat")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read(1024)
                self.sent["ok" if verdict.ok else "fail", True] += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.sent["ok" if verdict.ok else "fail", False] += 1
                log.warning("heartbeat to %s failed: %s", mask_ping_url(url), getattr(exc, "reason", exc))

    # -- the thread ------------------------------------------------------------------

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._loop, name="evman-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.settings()[1])

    def stop(self, error: str | None = None, wait_s: float = 5.0) -> None:
        """Stop beating; with `error` (the process exits with an error) ping /fail once first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_s)
            self._thread = None
        if error is not None:
            self.health.exited(error)
            self.timeout_s = min(self.timeout_s, wait_s)
            self.beat()
        if self._owns_store:
            self.store.close()
