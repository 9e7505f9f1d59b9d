"""@reboot events: a waiting run of each when the engine starts (one engine, SQLite), or when
the fleet does (several engines, PostgreSQL: the first of them, not each one)."""

from __future__ import annotations

import logging

from evman.engine.fleet.membership import Membership
from evman.engine.model import Trigger
from evman.engine.tick.context import Tick
from evman.engine.tick.lifecycle import new_run

log = logging.getLogger("evman.engine")


def queue_reboots(tick: Tick, fleet: Membership | None) -> None:
    """A waiting run of every @reboot event (the engine starts, or the fleet does)."""
    if fleet is not None:
        fleet.reboot_due = False
    for name in tick.view.store.reboot_events():
        new_run(tick, name, Trigger.REBOOT, tick.now, triggered_by="engine start")


def reboot_at_join(tick: Tick, fleet: Membership) -> None:
    """An engine joins the fleet: @reboot events once when the fleet starts, not per engine (in
    doubt, once the doubt settles: see Membership.reboot_due)."""
    if fleet.starts_fleet:
        queue_reboots(tick, fleet)
    elif not fleet.doubtful and (reboots := tick.view.store.reboot_events()):
        log.info(
            "not queuing @reboot event(s) %s: other engines are live (they run when "
            "the first engine of the fleet starts)",
            ", ".join(reboots),
        )
