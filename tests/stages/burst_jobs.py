"""Callables for the burst tests: each notes its run and what a separate connection to the
database says of that run's row at the moment it starts (was it committed, as running?)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

seen: list[tuple[int, str | None]] = []
"""(run id, its row's state as committed when the callable began; None: no row yet)."""
_lock = threading.Lock()


def look(ctx: Any) -> None:
    conn = sqlite3.connect(ctx.env["DB"], timeout=10)
    try:
        row = conn.execute("SELECT state FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()
    finally:
        conn.close()
    with _lock:
        seen.append((ctx.run_id, row[0] if row else None))
