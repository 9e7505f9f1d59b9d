"""Stage 0, with several engines: take over the engines whose lease ran out (or that stopped),
and make their waiting and running runs this engine's (see engine/fleet/membership.py)."""

from __future__ import annotations

import logging

from evman.engine.clock import iso
from evman.engine.fleet.membership import Membership
from evman.engine.running.executors import Executors
from evman.engine.stages.recover import take_runs
from evman.engine.store import Fenced, StoreError, Unreachable
from evman.engine.tick.context import Tick

log = logging.getLogger("evman.fleet")


def take_over(tick: Tick, membership: Membership, executors: Executors) -> None:
    """One indexed look for expired leases; a takeover moves the runs in its own transaction
    (so two survivors never share one), then they are judged here as at a restart: a command
    still running on this host is watched, one that ended is judged by its exit record, the
    rest are lost and page (rerun only where the event says on_lost = "rerun")."""
    try:
        gone, rows = membership.take_over(iso(tick.now) or "")
    except Fenced:
        raise
    except Unreachable as exc:  # the tick fails on it too, and says so (once per outage)
        log.debug("no takeover this tick: %s", exc)
        return
    except StoreError as exc:  # e.g. a lock held by a stopped engine: the tick goes on, next one retries
        log.warning("could not take over engines this tick, will retry: %s", exc)
        return
    if not gone and not rows:
        return
    for engine in gone:
        tick.change(
            "engine",
            f"engine {engine.id}",
            None,
            "taken over",
            f"pid {engine.pid} on {engine.host}, epoch {engine.epoch}, {engine.was}",
        )
    take_runs(tick, executors, rows, final=True)
