"""The verb about alerts: ack (acknowledge one alert, or every open one of an event)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evman.engine.clock import iso
from evman.engine.verbs.targets import RequestError, event_named, number_in

if TYPE_CHECKING:
    from evman.engine.tick.context import Tick


def ack(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    ids = [_alert_to_ack(tick, target)] if target.startswith("alert:") else _event_alerts_to_ack(tick, target)
    for alert_id in ids:
        tick.acked[alert_id] = who
        tick.batch.alert_acked(alert_id, who, iso(tick.now))
    return "acknowledged " + ", ".join(f"alert:{i}" for i in ids)


def _alert_to_ack(tick: Tick, target: str) -> int:
    alert_id = number_in(target, "alert")
    alert = tick.view.store.alert(alert_id)
    if alert is None:
        raise RequestError(f"there is no alert {alert_id}; `evman alerts` lists them")
    by = alert["acknowledged_by"] or tick.acked.get(alert_id)
    if alert["acknowledged_at"] or alert_id in tick.acked:
        raise RequestError(f"alert {alert_id} was acknowledged already by {by}")
    return alert_id


def _event_alerts_to_ack(tick: Tick, target: str) -> list[int]:
    name = event_named(tick, target)
    ids = [
        int(a["id"])
        for a in tick.view.store.open_alerts_of(name)
        if not a["acknowledged_at"] and a["id"] not in tick.acked
    ]
    if not ids:
        raise RequestError(f"{name} has no unacknowledged open alert")
    return ids
