"""`l`: alerts, unacknowledged first; `a` acknowledges one, `A` every open one of its event."""
from __future__ import annotations

from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from console import views
from console.screens.base import EvmanScreen, action_bindings
from console.widgets.line_table import Column, LineTable
from console.widgets.key_bar import KeyBar
from console.widgets.status_bar import StatusBar

COLUMNS: Final = (
    Column("id", "Alert", 11), Column("kind", "Kind", 9), Column("event", "Event", 12, fit=40),
    Column("raised", "Raised", 9), Column("count", "×", 3), Column("ack", "Ack", 12),
    Column("delivery", "Delivery", 12), Column("message", "Message", 12, fill=True),
)
KIND_TONES: Final = {"recovered": "ok", "late": "warn", "overrun": "warn", "too_fast": "warn",
                     "delivery": "warn"}
LIMIT: Final = 300


class AlertsLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class AlertsScreen(EvmanScreen):
    BINDINGS: ClassVar[list[BindingType]] = action_bindings(Binding("A", "ack_event", "Ack event"))

    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(Text(f"Alerts, unacknowledged first (newest {LIMIT})", style="bold"), id="title")
        yield LineTable(COLUMNS, id="alerts")
        yield Static("", id="note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.evman.show_status()
        self.load()
        self.set_interval(1.0, self.evman.show_status)

    @property
    def table(self) -> LineTable:
        return self.query_one(LineTable)

    @work(thread=True, exclusive=True, group="alerts")
    def load(self) -> None:
        with self.evman.reading() as store:
            rows = views.alert_list(store, event=None, open_only=False, limit=LIMIT)
        if not get_current_worker().is_cancelled:
            self.post_message(AlertsLoaded(rows))

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        self.load()

    def on_alerts_loaded(self, message: AlertsLoaded) -> None:
        self.alerts = {str(r["id"]): r for r in message.rows}
        self.table.sync([(str(r["id"]), self._cells(r)) for r in message.rows])
        self._show_note()

    def _cells(self, alert: dict[str, Any]) -> dict[str, tuple[str, str]]:
        now = self.evman.now()
        is_open = alert["status"] == "open"
        unacked = is_open and not alert["acknowledged_at"]
        tone = KIND_TONES.get(alert["kind"], "bad") if unacked else "muted"
        ack = alert["acknowledged_by"] or ("-" if is_open else alert["status"])
        return {
            "id": (f"alert:{alert['id']}", "plain" if unacked else "muted"), "kind": (alert["kind"], tone),
            "event": (alert["event"], "plain"), "raised": (views.since(alert["created_at"], now), "muted"),
            "count": (str(alert["count"]), "plain"),
            "ack": (ack.split(" (request")[0], "warn" if unacked else "muted"),
            "delivery": (alert["outcome"], "muted"), "message": (alert["message"] or "", "plain"),
        }


    def selected_alert(self) -> int | None:
        key = self.table.selected_key()
        return int(key) if key in self.alerts else None

    def selected_event(self) -> str | None:
        key = self.table.selected_key()
        return self.alerts[key]["event"] if key in self.alerts else None

    def selected_run(self) -> int | None:
        key = self.table.selected_key()
        run = self.alerts[key]["run_id"] if key in self.alerts else None
        return None if run is None else int(run)

    def action_ack_event(self) -> None:
        event = self.selected_event()
        if event is None:
            self.notify("Select an alert first.", severity="warning")
        else:
            self.evman.send_request("ack", event)

    def restart_target(self) -> str | None:
        # an alert's run has usually long finished: `r` restarts the event's latest run
        return self.selected_event()

    def kill_target(self) -> tuple[str, str] | None:
        event = self.selected_event()
        return None if event is None else (event, f"the active run of {event}")

    @on(LineTable.RowSelected)
    def _chosen(self, _event: LineTable.RowSelected) -> None:
        self.action_details()

    @on(LineTable.RowHighlighted)
    def _highlighted(self, _event: LineTable.RowHighlighted) -> None:
        self._show_note()

    def _show_note(self) -> None:
        key = self.table.selected_key()
        alert = self.alerts.get(key) if key else None
        text = "no alerts" if not self.alerts else ""
        if alert:
            ack = (f"acknowledged by {alert['acknowledged_by']}" if alert["acknowledged_at"]
                   else "not acknowledged: a acknowledges it, A every open alert of its event")
            text = f"alert:{alert['id']} {alert['kind']} · {alert['status']} · {ack}"
        self.query_one("#note", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))
