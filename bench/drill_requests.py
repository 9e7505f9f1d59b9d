"""The drill's other program: it inserts `requests` rows straight into the table, as any client
would (psycopg, no evman code), while the fleet runs and the faults hit it.

Three shapes, in turn: a unique dedupe key; a repeated key whose two transactions interleave (A
inserts first, so its row has the lower id, B inserts and commits, A commits up to 1.5 s later);
a repeated key inserted twice in order. A row is counted once its COMMIT returned; a server
restarting under it costs that row, never a wrong count."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.drill_workload import REQUEST_EVENT

INSERT = (
    "INSERT INTO requests (verb, target, requested_by, dedupe_key) "
    "VALUES ('trigger', %s, 'drill-requests', %s) RETURNING id"
)


@dataclass
class Sent:
    """What the program committed: request id -> its key, and the keys written more than once."""

    keys: dict[int, str] = field(default_factory=dict)
    repeated: set[str] = field(default_factory=set)
    interleaved: int = 0
    """Pairs whose transactions interleaved (the first inserted committed after the second)."""
    failed: int = 0
    """Attempts the server cut (restart, crash): not counted as sent."""


class RequestWriter:
    """A thread: one shape of request every `every_s` until stop()."""

    def __init__(self, dsn: str, *, every_s: float = 0.8, seed: int = 7) -> None:
        self.dsn = dsn
        self.every_s = every_s
        self.rng = random.Random(seed)
        self.sent = Sent()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drill-requests", daemon=True)
        self._n = 0

    def start(self) -> RequestWriter:
        self._thread.start()
        return self

    def stop(self) -> Sent:
        self._stop.set()
        self._thread.join(30)
        return self.sent

    def _loop(self) -> None:
        shapes = (self._unique, self._interleaved, self._in_order)
        while not self._stop.wait(self.every_s):
            self._n += 1
            try:
                shapes[self._n % len(shapes)]()
            except Exception:  # the server restarted or crashed under it: that row is not sent
                self.sent.failed += 1

    def _connect(self, autocommit: bool = True) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=autocommit, connect_timeout=5)

    def _unique(self) -> None:
        key = f"u-{self._n}"
        with self._connect() as conn:
            self._note(conn.execute(INSERT, (REQUEST_EVENT, key)).fetchone(), key)

    def _interleaved(self) -> None:
        key = f"p-{self._n}"
        with self._connect(autocommit=False) as slow, self._connect() as quick:
            first = slow.execute(INSERT, (REQUEST_EVENT, key)).fetchone()
            second = quick.execute(INSERT, (REQUEST_EVENT, key)).fetchone()
            self._note(second, key)
            time.sleep(self.rng.uniform(0.0, 1.5))
            slow.commit()
            self._note(first, key)
        self.sent.repeated.add(key)
        self.sent.interleaved += 1

    def _in_order(self) -> None:
        key = f"s-{self._n}"
        with self._connect() as conn:
            self._note(conn.execute(INSERT, (REQUEST_EVENT, key)).fetchone(), key)
            self._note(conn.execute(INSERT, (REQUEST_EVENT, key)).fetchone(), key)
        self.sent.repeated.add(key)

    def _note(self, row: Any, key: str) -> None:
        self.sent.keys[int(row[0])] = key
