"""Blackouts at run time: which events a blackout names, and whether an instant falls inside one."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from evman.engine.model import Blackout, EventSpec
from evman.engine.timing import occurrences
from evman.engine.timing.occurrences import Timing

_MAX_CHAIN: Final = 100
"""Back-to-back windows followed to find where a blackout really ends."""


@dataclass(frozen=True)
class Inside:
    """An instant inside a blackout: which one, and when it (and any that follow at once) ends."""

    blackout: Blackout
    end: datetime

    def __str__(self) -> str:
        what = f" ({self.blackout.description})" if self.blackout.description else ""
        return f"blackout {self.blackout.name}{what}"


def blackouts_from_json(stored: Mapping[str, str]) -> tuple[Blackout, ...]:
    """The blackouts as the store keeps them (name -> the JSON of its fields)."""
    found = []
    for text in stored.values():
        data = json.loads(text)
        for key in ("events", "tags"):
            data[key] = tuple(data.get(key) or ())
        found.append(Blackout(**data))
    return tuple(found)


def names_event(blackout: Blackout, spec: EventSpec) -> bool:
    """Whether `blackout` stops `spec`: its name matches a name or pattern, or it has a tag."""
    if any(fnmatch.fnmatchcase(spec.name, pattern) for pattern in blackout.events):
        return True
    return bool(set(blackout.tags) & set(spec.tags))


def window_at(blackout: Blackout, at: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the window of `blackout` that holds `at`, else None."""
    at = at.astimezone(UTC)
    if blackout.start is not None and blackout.end is not None:
        start, end = datetime.fromisoformat(blackout.start), datetime.fromisoformat(blackout.end)
        return (start, end) if start <= at < end else None
    if blackout.schedule is None or blackout.duration_s is None:
        return None
    length = timedelta(seconds=blackout.duration_s)
    timing = Timing(blackout.schedule, blackout.timezone)
    found = occurrences.next_fire(timing, at - length)
    if found is None or found > at:
        return None
    return found, found + length


def inside(blackouts: Iterable[Blackout], at: datetime) -> Inside | None:
    """The blackout `at` falls in (the one lasting longest), its end following windows that
    start before the one before ends; None outside every one."""
    blackouts = tuple(blackouts)
    best: Inside | None = None
    for blackout in blackouts:
        window = window_at(blackout, at)
        if window is not None and (best is None or window[1] > best.end):
            best = Inside(blackout, window[1])
    if best is None:
        return None
    end = best.end
    for _ in range(_MAX_CHAIN):
        later = [w[1] for b in blackouts if (w := window_at(b, end)) is not None]
        if not later:
            break
        end = max(later)
    return Inside(best.blackout, end)


def clear_at(blackouts: Iterable[Blackout], at: datetime) -> datetime:
    """The first instant from `at` on that no blackout covers."""
    found = inside(blackouts, at)
    return at if found is None else found.end
