"""A screen that lists rows (alerts, late runs): a title, a table, a note on the selected row."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from evman.console.screens.base import EvmanScreen
from evman.console.widgets.key_bar import KeyBar
from evman.console.widgets.line_table import Column, LineTable
from evman.console.widgets.status_bar import StatusBar
from evman.engine.store import Store


class RowsLoaded(Message):
    """Rows and their cells, both made in the worker thread (hundreds of late runs' cells
    cost tens of ms: not on the event loop)."""

    def __init__(self, rows: list[dict[str, Any]], cells: list[tuple[str, dict[str, tuple[str, str]]]]) -> None:
        super().__init__()
        self.rows = rows
        self.cells = cells


class ListingScreen(EvmanScreen):
    """Rows keyed by their "id"; a subclass says what to read, how a row looks, and its note."""

    HEADING: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    TABLE_ID: ClassVar[str] = "rows"
    REFRESH_EVERY_S: ClassVar[float | None] = None
    """Re-read on a timer too, for lists that change with the clock alone."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(Text(self.HEADING, style="bold"), id="title")
        yield LineTable(self.COLUMNS, id=self.TABLE_ID)
        yield Static("", id="note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.services.show_status()
        first = self.take_preloaded()
        if isinstance(first, RowsLoaded):
            self.on_rows_loaded(first)
        else:
            self.load()
        if self.REFRESH_EVERY_S is not None:
            self.set_interval(self.REFRESH_EVERY_S, self.load)
        self.set_interval(1.0, self.services.show_status)

    @property
    def table(self) -> LineTable:
        return self.query_one(LineTable)

    def read(self, store: Store) -> list[dict[str, Any]]:
        raise NotImplementedError

    def cells(self, row: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """A row's cells; called in the worker thread, so it reads only the row, the clock
        and the zone."""
        raise NotImplementedError

    def note(self, row: dict[str, Any] | None) -> str:
        raise NotImplementedError

    def read_shown(self, store: Store) -> RowsLoaded:
        rows = self.read(store)
        return RowsLoaded(rows, [(str(r["id"]), self.cells(r)) for r in rows])

    @work(thread=True, exclusive=True, group="listing")
    def load(self) -> None:
        with self.services.reading() as store:
            loaded = self.read_shown(store)
        if not get_current_worker().is_cancelled:
            self.post_message(loaded)

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        self.load()

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        self.rows = {str(r["id"]): r for r in message.rows}
        self.loaded = True
        self.table.sync(message.cells)
        self._show_note()

    def selected_row(self) -> dict[str, Any] | None:
        key = self.table.selected_key()
        return self.rows.get(key) if key else None

    def selected_event(self) -> str | None:
        row = self.selected_row()
        return None if row is None else str(row["event"])

    @on(LineTable.RowSelected)
    def _chosen(self, _event: LineTable.RowSelected) -> None:
        self.open("details")

    @on(LineTable.RowHighlighted)
    def _highlighted(self, _event: LineTable.RowHighlighted) -> None:
        self._show_note()

    def _show_note(self) -> None:
        text = self.note(self.selected_row())
        self.query_one("#note", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))
