"""Several engines: leaving a request for the engine that owns what it names, and asking
another engine to kill a run of its own (a follow-on request, routed to it).

Only the owner of a run may write it (every run write is a compare-and-set on its owner), so
an engine never kills another's run itself: it asks, through the mailbox, and the owner
answers at its next tick (NOTIFY wakes it; its polling is what correctness relies on)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evman.engine.clock import iso
from evman.engine.fleet.elsewhere import Remote
from evman.engine.store import is_pg_store
from evman.engine.tick.context import Tick


class Routed(Exception):
    """A request handler's answer "not mine": the request stays open, for `engine_id` (None:
    for whoever owns the run once a takeover gave it an owner)."""

    def __init__(self, engine_id: int | None, why: str) -> None:
        super().__init__(why)
        self.engine_id = engine_id


def route_to(remote: Remote, why: str) -> Routed:
    """The Routed to raise for a request about `remote`, a run this engine does not own."""
    return Routed(remote.engine_id, f"{why}: run {remote.id} is {remote.state} on {remote.where}")


def ask_to_kill(
    tick: Tick, remotes: Sequence[Remote], requested_by: str, args: dict[str, Any] | None = None
) -> list[int]:
    """Queue `kill run:N` for each run's owner, written with this tick's writes; their request ids."""
    store = tick.view.store
    if not remotes:
        return []
    if not is_pg_store(store):  # only several engines see runs of other engines
        raise TypeError(f"runs of another engine on {store.url}, which one engine drives")
    ids = store.next_request_ids(len(remotes))
    for request_id, remote in zip(ids, remotes, strict=True):
        tick.batch.request_queued(
            int(request_id),
            "kill",
            f"run:{remote.id}",
            json.dumps(args) if args else None,
            requested_by,
            iso(tick.now),
            remote.engine_id,
        )
        tick.change("request", remote.event, remote.id, "routed", f"kill #{request_id} to {remote.where}")
    return [int(i) for i in ids]


def me(tick: Tick) -> str:
    return "this engine" if tick.owner is None else f"engine {tick.owner.engine_id}"
