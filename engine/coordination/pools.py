"""Resource pools: what a run takes, and who goes first when runs wait for the same slots.

The order among runs waiting for a pool is their event's `priority` (higher first), then when
they fell due (earlier first). No run starves:

- a run's priority grows by one for every AGING_S it has waited, so a run that waits long
  enough goes ahead of any newer run, whatever their priorities;
- a run keeps its place: while it waits for a pool, no run behind it in any pool it uses
  starts, even where a slot is free for the smaller run and not for it (a run that needs
  two slots, or two pools, is not overtaken for ever by runs that need one).

Backfill runs stand aside for live runs, as they do for their own event's live runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

AGING_S: Final = 600.0
"""A waiting run's priority grows by one for each of these seconds it has waited."""


def uses_text(uses: Mapping[str, int]) -> str | None:
    """The runs.pools column: "warehouse=1,db=2" (sorted by pool), None for no pool."""
    if not uses:  # most runs (a generator, sorted and joined for nothing: ~1 µs a run of a burst)
        return None
    return ",".join(f"{name}={count}" for name, count in sorted(uses.items())) or None


def parse_uses(text: str | None) -> dict[str, int]:
    """uses_text undone; a malformed part is left out."""
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        name, _, count = part.partition("=")
        if name and count.isdigit():
            out[name] = int(count)
    return out


@dataclass(frozen=True)
class Claimant:
    """A run that holds pool slots (running) or waits in line for them (ready but for them)."""

    run_id: int
    event: str
    uses: Mapping[str, int]
    holding: bool
    priority: int = 0
    due_at: datetime | None = None
    """When it fell due (its scheduled time); the later of equal priorities waits."""
    backfill: bool = False
    mine: bool = True
    """This engine's run (False: another engine's, several engines)."""

    def label(self) -> str:
        return f"{self.event} run {self.run_id}"


def effective_priority(claimant: Claimant, now: datetime) -> float:
    waited = 0.0 if claimant.due_at is None else max(0.0, (now - claimant.due_at).total_seconds())
    return claimant.priority + waited // AGING_S


def in_line(queue: Iterable[Claimant], now: datetime) -> list[Claimant]:
    """The waiting claimants in the order they get slots."""

    def key(c: Claimant) -> tuple[bool, float, datetime | str, int]:
        return (c.backfill, -effective_priority(c, now), c.due_at or "", c.run_id)

    return sorted(queue, key=key)


@dataclass
class Decision:
    """What arbitrate() decided: the runs of this engine to start, and why each other one waits."""

    start: list[int] = field(default_factory=list)
    why: dict[int, str] = field(default_factory=dict)
    granted_elsewhere: list[int] = field(default_factory=list)
    """Other engines' runs next in line: their slots are left for them."""


def arbitrate(
    sizes: Mapping[str, int], claimants: Sequence[Claimant], now: datetime, busy: Iterable[str] = ()
) -> Decision:
    """Walk the line: each waiting run gets its slots if every pool it uses has them free and
    no run ahead of it still waits for one of those pools. `busy`: pools another engine is
    deciding on now (several engines): nothing of them is given this time."""
    holders = [c for c in claimants if c.holding]
    free = {name: size - sum(c.uses.get(name, 0) for c in holders) for name, size in sizes.items()}
    waiting_for: dict[str, Claimant] = {}
    busy = set(busy)
    decision = Decision()
    for claimant in in_line((c for c in claimants if not c.holding), now):
        short = _short_pool(claimant, sizes, free, waiting_for, busy)
        if short is None:
            for name, count in claimant.uses.items():
                free[name] -= count
            (decision.start if claimant.mine else decision.granted_elsewhere).append(claimant.run_id)
            holders.append(claimant)  # the runs behind it say who holds the slots from now on
            continue
        decision.why[claimant.run_id] = _why(short, claimant, sizes, free, holders, waiting_for, busy)
        for name in claimant.uses:
            waiting_for.setdefault(name, claimant)
    return decision


def _short_pool(
    claimant: Claimant, sizes: Mapping[str, int], free: Mapping[str, int], ahead: Mapping[str, Claimant], busy: set[str]
) -> str | None:
    """The first pool (by name) `claimant` cannot have now, or None."""
    for name in sorted(claimant.uses):
        if name not in sizes or name in busy or name in ahead or free[name] < claimant.uses[name]:
            return name
    return None


def _why(
    name: str,
    claimant: Claimant,
    sizes: Mapping[str, int],
    free: Mapping[str, int],
    holders: Sequence[Claimant],
    ahead: Mapping[str, Claimant],
    busy: set[str],
) -> str:
    if name not in sizes:
        return f"waiting for pool {name}, which no [pools] table defines; add {name} = N to [pools] and load it"
    held = [c for c in holders if name in c.uses]
    count = sum(c.uses[name] for c in held)
    by = f" by {', '.join(c.label() for c in held)}" if held else ""
    text = f"waiting for pool {name} ({count} of {sizes[name]} held{by}"
    if claimant.uses[name] > sizes[name]:
        return text + f"); it needs {claimant.uses[name]} slots, more than the pool has"
    if name in ahead:
        return text + f"; next in line: {ahead[name].label()})"
    if name in busy:
        return text + "; another engine is starting one of its runs)"
    return text + ")"
