"""Where an event may run (several engines, PostgreSQL): what an engine offers (its host and
its --tags), whether an event fits it, and the words a driver reads while a run waits for one."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from evman.engine.model import EventSpec


@dataclass(frozen=True)
class Seat:
    """What an engine offers events that say where they run: its host and its --tags."""

    host: str
    tags: frozenset[str] = frozenset()

    def fits(self, spec: EventSpec) -> bool:
        return (not spec.hosts and not spec.tags) or self.fits_placement(spec.hosts, spec.tags)

    def fits_placement(self, hosts: Iterable[str], tags: Iterable[str]) -> bool:
        """One of the hosts (if any is named; a short name matches the engine's full one, case
        does not matter, as in DNS), and every tag (lowercase, as --tags reads them)."""
        wanted = {h.lower() for h in hosts}
        host = self.host.lower()
        if wanted and host not in wanted and host.split(".", 1)[0] not in wanted:
            return False
        return {t.lower() for t in tags} <= self.tags

    def describe(self) -> str:
        """`app1 [big, gpu]`: how the engine reads in a waiting reason."""
        return f"{self.host} [{', '.join(sorted(self.tags))}]"


class Placement(Protocol):
    """What a tick asks about placement (engine/fleet/membership.py's Membership answers)."""

    def fits(self, spec: EventSpec) -> bool: ...

    def why_waiting(self, spec: EventSpec) -> str: ...


def parse_tags(values: Collection[str] | str | None) -> frozenset[str]:
    """--tags gpu,big (or repeated): a set of lowercase words."""
    if values is None:
        return frozenset()
    items = [values] if isinstance(values, str) else list(values)
    return frozenset(w.strip().lower() for item in items for w in item.split(",") if w.strip())


def needs(spec: EventSpec) -> str:
    """`on host web1 with tags [gpu]`: what an event asks of the engine that runs it."""
    parts = []
    if spec.hosts:
        parts.append(("on host " if len(spec.hosts) == 1 else "on one of hosts ") + ", ".join(spec.hosts))
    if spec.tags:
        parts.append(f"with tags [{', '.join(spec.tags)}]")
    return " ".join(parts) or "(any)"


def waiting_reason(spec: EventSpec, live: Sequence[Seat]) -> str:
    """Why a run waits unowned: what it needs, and what the live engines offer (none fits)."""
    offered = ", ".join(seat.describe() for seat in live) or "none"
    return f"waiting for an engine {needs(spec)} (live engines offer: {offered})"
