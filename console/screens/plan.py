"""`p`: the plan. One line per event on a time axis (now, the p50-to-p90 bar, the deadline),
its slack and its probability of missing the deadline, coloured by that probability, most
urgent first; a row waiting for a pool or an approval is marked ⧖ in its state, and its note
says what it waits for and the slack it loses; Enter opens the event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import Static

from evman.console.screens.base import back_keys
from evman.console.screens.listing import ListingScreen, RowsLoaded
from evman.console.views import plan as planning
from evman.console.widgets.line_table import Column
from evman.engine.store import Store

AXIS_WIDTH: Final = 48
COLUMNS: Final = (
    Column("event", "Event", 12, fit=32),
    Column("state", "State", 9),
    Column("slack", "Slack", 8),
    Column("miss", "Miss", 6),
    Column("axis", "now → (━ p50 to p90, ┃ deadline)", AXIS_WIDTH),
    Column("deadline", "Deadline", 8),
    Column("path", "Critical path", 12, fill=True),
)
REFRESH_EVERY_S: Final = 15.0


class PlanScreen(ListingScreen):
    """The projection as `evman plan` makes it, re-read on every change and every 15 s."""

    BINDINGS: ClassVar[list[BindingType]] = back_keys()
    HEADING = "Plan: projected finishes against deadlines, most urgent first"
    COLUMNS = COLUMNS
    TABLE_ID = "plan"
    REFRESH_EVERY_S = REFRESH_EVERY_S

    def __init__(self) -> None:
        super().__init__()
        self.span = (0.0, 1.0)

    def read(self, store: Store) -> list[dict[str, Any]]:
        view = planning.plan_view(store, self.services.now())
        start, end = planning.axis_span(view)
        from evman.engine.foresight.text import path_text

        out = []
        for row in planning.ordered(view):
            out.append(
                {
                    **planning.row_json(view, row),
                    "id": row.event,
                    "held": row.held,
                    "tone": planning.tone(row),
                    "miss": planning.miss_text(row),
                    "path_text": path_text(view.plan, row.event),
                    "waiting_text": planning.waiting_on(view, row.event, self.services.zone, shown=True),
                    "axis": planning.axis(row, start, end, AXIS_WIDTH),
                    "unbounded": row.is_unbounded,
                    "deadline_ts": row.deadline_ts,
                    "span": (start, end),
                }
            )
        return out

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        super().on_rows_loaded(message)
        if message.rows:
            start, end = message.rows[0]["span"]
            self.query_one("#title", Static).update(
                Text(f"{self.HEADING} · axis {self._clock(start)} to {self._clock(end)}", style="bold")
            )

    def _clock(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).astimezone(self.services.zone).strftime("%H:%M")

    def cells(self, row: dict[str, Any]) -> dict[str, tuple[str, str]]:
        tone = row["tone"]
        slack = planning.slack_text(row["slack_s"], bounded=not (row["unbounded"] and row["deadline"]))
        deadline = "-" if row["deadline_ts"] is None else self._clock(row["deadline_ts"])
        state = row["state"] + (" (held)" if row["held"] else "") + (" ⧖" if row["waiting_text"] else "")
        return {
            "event": (row["event"], "plain"),
            "state": (state, "muted"),
            "slack": (slack, tone),
            "miss": (row["miss"], tone),
            "axis": (row["axis"], tone),
            "deadline": (deadline, "muted"),
            "path": (row["path_text"], "plain"),
        }

    def note(self, row: dict[str, Any] | None) -> str:
        if row is None:
            return "nothing falls due within 12 hours and nothing is running" if self.loaded else ""
        finish = (
            "never, unless someone acts"
            if row["unbounded"]
            else (f"p50 {self._at(row['finish_p50'])}, p90 {self._at(row['finish_p90'])}")
        )
        waits = f" · waiting on {row['waiting_text']}" if row["waiting_text"] else ""
        return (
            f"{row['event']}: finishes {finish} · {row['miss']} likely to miss · {row['confidence']} confidence "
            f"({row['samples']} runs){waits} · Enter opens it"
        )

    def _at(self, stamp: str | None) -> str:
        return "-" if stamp is None else datetime.fromisoformat(stamp).astimezone(self.services.zone).strftime("%H:%M")
