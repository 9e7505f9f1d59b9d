"""Callables for the pool tests: each counts how many of its kind execute at once (the peak is
what a pool of N must never exceed), and what it was given."""

from __future__ import annotations

import threading
import time
from typing import Any

_lock = threading.Lock()
active: dict[str, int] = {}
peak: dict[str, int] = {}
seen: list[tuple[str, dict[str, Any]]] = []


def hold(ctx: Any) -> None:
    """Execute for a little real time while counting how many others of its pool do."""
    key = ctx.env.get("POOL_KEY", "default")
    with _lock:
        active[key] = active.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), active[key])
    try:
        time.sleep(0.02)
    finally:
        with _lock:
            active[key] -= 1


def record(ctx: Any, **params: str) -> None:
    """Remember the keyword arguments it was called with (its run parameters)."""
    with _lock:
        seen.append((ctx.event, dict(params)))


def reset(key: str) -> None:
    with _lock:
        active.pop(key, None)
        peak.pop(key, None)
        seen.clear()
