"""`l`: alerts, unacknowledged first; `a` acknowledges one, `A` every open one of its event."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from textual.binding import Binding, BindingType

from evman.console.screens.base import back_keys
from evman.console.screens.listing import ListingScreen
from evman.console.views import contract, screen_rows
from evman.console.widgets.line_table import Column
from evman.engine.store import Store
from evman.engine.verbs import Verb

COLUMNS: Final = (
    Column("id", "Alert", 11),
    Column("kind", "Kind", 9),
    Column("event", "Event", 12, fit=40),
    Column("raised", "Raised", 9),
    Column("count", "×", 3),
    Column("ack", "Ack", 12),
    Column("delivery", "Delivery", 12),
    Column("message", "Message", 12, fill=True),
)
LIMIT: Final = 300


class AlertsScreen(ListingScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("A", "ack_event", "Ack event"), *back_keys()]
    HEADING = f"Alerts, unacknowledged first (newest {LIMIT})"
    COLUMNS = COLUMNS
    TABLE_ID = "alerts"

    def read(self, store: Store) -> list[dict[str, Any]]:
        return contract.alert_list(store, event=None, open_only=False, limit=LIMIT)

    def cells(self, alert: dict[str, Any]) -> dict[str, tuple[str, str]]:
        now = self.services.now()
        is_open = alert["status"] == "open"
        unacked = is_open and not alert["acknowledged_at"]
        tone = screen_rows.kind_tone(alert["kind"]) if unacked else "muted"
        ack = alert["acknowledged_by"] or ("-" if is_open else alert["status"])
        return {
            "id": (f"alert:{alert['id']}", "plain" if unacked else "muted"),
            "kind": (alert["kind"], tone),
            "event": (alert["event"], "plain"),
            "raised": (screen_rows.since(alert["created_at"], now), "muted"),
            "count": (str(alert["count"]), "plain"),
            "ack": (ack.split(" (request")[0], "warn" if unacked else "muted"),
            "delivery": screen_rows.delivery_cell(alert),
            "message": (alert["message"] or "", "plain"),
        }

    def selected_alert(self) -> int | None:
        alert = self.selected_row()
        return None if alert is None else int(alert["id"])

    def selected_run(self) -> int | None:
        alert = self.selected_row()
        return None if alert is None or alert["run_id"] is None else int(alert["run_id"])

    def action_ack_event(self) -> None:
        event = self.selected_event()
        if event is None:
            self.notify("Select an alert first.", severity="warning")
        else:
            self.services.send_request("ack", event)

    def run_target(self, verb: Verb) -> int | None:
        # an alert's run has usually long finished: `r` restarts the event's latest run, `K`
        # kills the event's active run
        return None

    def note(self, alert: dict[str, Any] | None) -> str:
        if alert is None:
            return "no alerts" if not self.rows else ""
        ack = (
            f"acknowledged by {alert['acknowledged_by']}"
            if alert["acknowledged_at"]
            else "not acknowledged: a acknowledges it, A every open alert of its event"
        )
        route = ""
        if alert["outcome"] == contract.NO_ROUTE:  # first: it is what the driver must fix
            why = alert["deliveries"][-1]["error"].split(" in the loaded definitions")[0]
            fix = (
                "give the event a driver (or [defaults] driver) and define its route under [routes]"
                if "has no driver" in why
                else "define it under [routes]"
            )
            route = f" · not sent: {why}; {fix}"
        return f"alert:{alert['id']} {alert['kind']}{route} · {alert['status']} · {ack}"
