"""`o`: every run that is late, overdue, over its normal maximum, or recently missed."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from textual.binding import BindingType

from evman.console.screens.base import back_keys
from evman.console.screens.listing import ListingScreen
from evman.console.views import screen_rows
from evman.console.widgets.line_table import Column
from evman.engine.store import Store

COLUMNS: Final = (
    Column("kind", "Kind", 7),
    Column("how", "How late", 8),
    Column("event", "Event", 12, fit=40),
    Column("run", "Run", 10),
    Column("state", "State", 11),
    Column("deadline", "Deadline", 11),
    Column("why", "Why", 12, fill=True),
)
REFRESH_EVERY_S: Final = 5.0


class OverdueScreen(ListingScreen):
    """Most late first. Lateness grows with the clock, so it re-reads every few seconds too."""

    BINDINGS: ClassVar[list[BindingType]] = back_keys()
    HEADING = "Late, overdue, over their maximum, or missed in the last 24 h"
    COLUMNS = COLUMNS
    TABLE_ID = "overdue"
    REFRESH_EVERY_S = REFRESH_EVERY_S

    def read(self, store: Store) -> list[dict[str, Any]]:
        return screen_rows.attention_list(store, self.services.now())

    def cells(self, run: dict[str, Any]) -> dict[str, tuple[str, str]]:
        tone = screen_rows.kind_tone(run["kind"])
        state = run["state"]
        when = screen_rows.local_time(run["deadline"], self.services.zone, self.services.now())
        why = _why(run)
        return {
            "kind": (run["kind"], tone),
            "how": (screen_rows.span(run["late_s"]), tone),
            "event": (run["event"], "plain"),
            "run": (f"run:{run['id']}", "plain"),
            "state": (
                f"{screen_rows.STATE_SYMBOLS.get(state, ' ')} {state}",
                screen_rows.STATE_TONES.get(state, "plain"),
            ),
            "deadline": (when, "muted"),
            "why": (why, "plain"),
        }

    def selected_run(self) -> int | None:
        run = self.selected_row()
        return None if run is None else int(run["id"])

    def note(self, run: dict[str, Any] | None) -> str:
        if run is None:
            return "nothing is late, overdue or missed" if self.loaded and not self.rows else ""
        return (
            f"run {run['id']} of {run['event']}: {run['kind']} by {screen_rows.span(run['late_s'])}"
            f" · trigger {run['trigger']}" + (f" · {run['waiting_reason']}" if run.get("waiting_reason") else "")
        )


def _why(run: dict[str, Any]) -> str:
    if run["kind"] == "overrun" and run.get("runtime_max_s") is not None:
        return f"running longer than its normal maximum of {screen_rows.span(run['runtime_max_s'])}"
    if run["kind"] == "overdue":
        return "still running after its window closed"
    return str(run.get("waiting_reason") or run.get("reason") or "")
