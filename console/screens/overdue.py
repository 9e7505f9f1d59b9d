"""`o`: every run that is late, overdue, over its normal maximum, or recently missed."""
from __future__ import annotations

from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from console import views
from console.screens.base import EvmanScreen, action_bindings
from console.widgets.line_table import Column, LineTable
from console.widgets.key_bar import KeyBar
from console.widgets.status_bar import StatusBar

COLUMNS: Final = (
    Column("kind", "Kind", 7), Column("how", "How late", 8), Column("event", "Event", 12, fit=40),
    Column("run", "Run", 10), Column("state", "State", 11), Column("deadline", "Deadline", 11),
    Column("why", "Why", 12, fill=True),
)
KIND_TONES: Final = {"missed": "bad", "overdue": "bad", "overrun": "warn", "late": "warn"}
REFRESH_EVERY_S: Final = 5.0


class AttentionLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class OverdueScreen(EvmanScreen):
    """Most late first. Lateness grows with the clock, so it re-reads every few seconds too."""

    BINDINGS: ClassVar[list[BindingType]] = action_bindings()

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, dict[str, Any]] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(Text("Late, overdue, over their maximum, or missed in the last 24 h",
                          style="bold"), id="title")
        yield LineTable(COLUMNS, id="overdue")
        yield Static("", id="note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.evman.show_status()
        self.load()
        self.set_interval(REFRESH_EVERY_S, self.load)
        self.set_interval(1.0, self.evman.show_status)

    @property
    def table(self) -> LineTable:
        return self.query_one(LineTable)

    @work(thread=True, exclusive=True, group="overdue")
    def load(self) -> None:
        with self.evman.reading() as store:
            rows = views.attention_list(store, self.evman.now())
        if not get_current_worker().is_cancelled:
            self.post_message(AttentionLoaded(rows))

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        self.load()

    def on_attention_loaded(self, message: AttentionLoaded) -> None:
        self.runs = {str(r["id"]): r for r in message.rows}
        self.loaded = True
        self.table.sync([(str(r["id"]), self._cells(r)) for r in message.rows])
        self._show_note()

    def _cells(self, run: dict[str, Any]) -> dict[str, tuple[str, str]]:
        tone = KIND_TONES.get(run["kind"], "plain")
        state = run["state"]
        when = views.local_time(run["deadline"], self.evman.zone, self.evman.now())
        why = _why(run)
        return {
            "kind": (run["kind"], tone), "how": (views.span(run["late_s"]), tone),
            "event": (run["event"], "plain"), "run": (f"run:{run['id']}", "plain"),
            "state": (f"{views.STATE_SYMBOLS.get(state, ' ')} {state}", views.STATE_TONES.get(state, "plain")),
            "deadline": (when, "muted"), "why": (why, "plain"),
        }


    def selected_event(self) -> str | None:
        key = self.table.selected_key()
        return self.runs[key]["event"] if key in self.runs else None

    def selected_run(self) -> int | None:
        key = self.table.selected_key()
        return int(key) if key in self.runs else None

    @on(LineTable.RowSelected)
    def _chosen(self, _event: LineTable.RowSelected) -> None:
        self.action_details()

    @on(LineTable.RowHighlighted)
    def _highlighted(self, _event: LineTable.RowHighlighted) -> None:
        self._show_note()

    def _show_note(self) -> None:
        key = self.table.selected_key()
        run = self.runs.get(key) if key else None
        text = "nothing is late, overdue or missed" if self.loaded and not self.runs else ""
        if run:
            text = (f"run {run['id']} of {run['event']}: {run['kind']} by {views.span(run['late_s'])}"
                    f" · trigger {run['trigger']}" + (f" · {run['waiting_reason']}" if run.get("waiting_reason") else ""))
        self.query_one("#note", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))


def _why(run: dict[str, Any]) -> str:
    if run["kind"] == "overrun" and run.get("runtime_max_s") is not None:
        return f"running longer than its normal maximum of {views.span(run['runtime_max_s'])}"
    if run["kind"] == "overdue":
        return "still running after its window closed"
    return str(run.get("waiting_reason") or run.get("reason") or "")
