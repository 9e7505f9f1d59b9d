"""Pools and groups: the `pools` table, the runs that hold or wait for pool slots, the members of
a group. Starting a run that takes slots is decided under the pool's row lock (several engines:
one engine at a time per pool, until its tick commits), so a slot is never given twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from evman.engine.store.part import Part, in_chunks

_CLAIMANTS: Final = (
    "SELECT id, event, state, scheduled_for, pools, flags, started_at, waiting_reason{owner} FROM runs "
    "WHERE pools IS NOT NULL AND state IN ('waiting', 'running') ORDER BY id"
)
"""Every run that holds pool slots (running) or is in line for them (waiting): the partial
index runs_pools holds only these rows. Several engines: with the engine that owns each."""


class PoolsPart(Part):
    def pool_sizes(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self.rows("SELECT name, size FROM pools ORDER BY name")}

    def lock_pools(self, names: Sequence[str]) -> dict[str, int]:
        """name -> size of the named pools this engine may give slots of now: several engines:
        each row locked until this tick's flush commits, and those another engine has locked
        left out (it is starting runs of them; ask again next tick); one engine: all of them."""
        found: dict[str, int] = {}
        for chunk, marks in in_chunks(sorted(set(names))):
            rows = self.claim(f"SELECT name, size FROM pools WHERE name IN ({marks}) ORDER BY name", chunk)
            found.update({str(r[0]): int(r[1]) for r in rows})
        return found

    def pool_claimants(self) -> list[dict[str, Any]]:
        """The runs that hold pool slots or wait in line for them, every engine's."""
        return self.dicts(_CLAIMANTS.format(owner=", engine_id" if self.several_engines else ""))

    def group_members(self, group: str) -> list[str]:
        """The defined events of `group`, by name (the partial index events_group)."""
        return [
            str(r[0])
            for r in self.rows("SELECT name FROM events WHERE group_name = ? AND defined = 1 ORDER BY name", (group,))
        ]

    def group_names(self) -> list[str]:
        return [
            str(r[0])
            for r in self.rows(
                "SELECT DISTINCT group_name FROM events WHERE group_name IS NOT NULL AND defined = 1 ORDER BY 1"
            )
        ]
