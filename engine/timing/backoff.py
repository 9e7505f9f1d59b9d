"""The rules of an event's policy that more than one stage asks: retry backoff."""

from __future__ import annotations

from datetime import timedelta

from evman.engine.model import EventSpec


def backoff_for(spec: EventSpec, attempt: int) -> timedelta:
    """Doubling from `backoff` for each attempt so far, capped at backoff_max."""
    delay = spec.on_failure.backoff_s * (2 ** min(max(0, attempt - 1), 64))  # 2**64: past any cap, no overflow
    return timedelta(seconds=min(delay, spec.on_failure.backoff_max_s))
