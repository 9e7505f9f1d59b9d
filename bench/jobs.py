"""The work the benchmarks schedule: it notes that it ran, and does nothing else."""

from __future__ import annotations

import time
from typing import Any

calls: list[tuple[str, float, float]] = []
"""(key, started, ended) per call, wall-clock seconds; list.append is atomic under the GIL."""


def noop(ctx: Any = None) -> None:
    """evman's no-op callable (it receives a RunContext)."""
    started = time.time()
    calls.append((ctx.event if ctx is not None else "", started, time.time()))


def record(key: str) -> None:
    """The peers' no-op job: the same note, keyed by the caller."""
    started = time.time()
    calls.append((key, started, time.time()))


def reset() -> None:
    calls.clear()
