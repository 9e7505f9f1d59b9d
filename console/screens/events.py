"""The main screen: every event, its state, next and last run, runtime, window and alerts."""

from __future__ import annotations

import gc
from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from evman.console.screens.event_groups import GroupLines
from evman.console.screens.event_pages import EventPages, RowsLoaded
from evman.console.screens.event_slack import PLAN_EVERY_S, SlackColumn
from evman.console.views import groups, screen_rows
from evman.console.widgets.event_table import COLUMNS, EventTable
from evman.console.widgets.key_bar import KeyBar
from evman.console.widgets.status_bar import StatusBar
from evman.engine.vocabulary import ACTIVE_STATES

SORTS: Final = ("name", "state", "next", "last", "runtime", "window", "alerts", "driver")
"""`s` steps through these; a click on a column header sorts by it (again: reversed)."""
FILTER_PLACEHOLDER: Final = "filter: words match name, state or driver; state:failed driver:ops"
RELOAD_DELAY_S: Final = 0.02
"""Changes that arrive together (one tick, a burst of ticks) are read in one go."""


class EventsScreen(GroupLines, SlackColumn, EventPages):
    """Holds every event's row in memory; the table shows the filtered, sorted ones, and only
    rows that changed (or are on screen, for relative times) are re-read or redrawn."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("g", "fold", "Fold group", show=False),
        Binding("escape", "back", "Clear filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.filter_text = ""
        self.sort_column = "name"
        self.sort_reverse = False
        self.loaded = False
        self.last_refresh_s = 0.0
        """How long the last partial re-read took in its worker (for the bench)."""
        self._dirty: set[str] = set()
        self._reload_pending = False
        self._counts: dict[str, int] = {}
        self._counted: dict[str, tuple[str, int]] = {}
        self._sorted: list[str] = []
        """Every event in the sort order; a filter picks from it, clearing one shows it."""

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield EventTable(id="events")
        yield Static("", id="note")
        yield KeyBar()

    @property
    def table(self) -> EventTable:
        return self.query_one(EventTable)

    def on_mount(self) -> None:
        self.table.palette = self.services.palette
        self.query_one(StatusBar).palette = self.services.palette
        self.services.show_status()
        self.load_first()
        self.set_interval(1.0, self._every_second)
        self.set_interval(PLAN_EVERY_S, self.load_slack)

    # -- reading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="events-some")
    def reload(self, events: set[str]) -> None:
        import time

        started = time.perf_counter()
        with self.services.reading() as store:
            names = screen_rows.resolve_targets(store, events)
            rows = screen_rows.console_event_rows(store, sorted(names))
        if not get_current_worker().is_cancelled:
            self.post_message(
                RowsLoaded(rows, complete=False, asked=set(events) | names, elapsed_s=time.perf_counter() - started)
            )

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        if definitions:
            self.load_all()
            self.load_slack()
            return
        self._dirty |= events
        self._dirty |= set(self.table.visible_keys()) if self.services.mode != "engine" else set()
        if not self._reload_pending:
            self._reload_pending = True
            self.set_timer(RELOAD_DELAY_S, self._start_reload)
        self.slack_after_change()

    def _start_reload(self) -> None:
        self._reload_pending = False
        if self._dirty:
            self.reload(set(self._dirty))

    def take_rows(self, message: RowsLoaded) -> None:
        if message.first:
            self._take_first(message.rows)
            return
        if message.complete:
            self._take_all(message.rows)
        else:
            self._take_some(message.rows, message.asked)
            self.last_refresh_s = message.elapsed_s
        self._show_counts()
        self._show_note()

    def _take_first(self, rows: list[dict[str, Any]]) -> None:
        """The first page, by name, while the rest is read: shown as it is (the header says
        loading until every row is in)."""
        if self.loaded or self.filter_text or self.sort_column != "name" or self.sort_reverse:
            return
        self.rows = {r["name"]: r for r in rows}
        self.table.show(list(self.rows), self._cells_of, keep=self.table.selected_key())

    def _take_all(self, rows: list[dict[str, Any]]) -> None:
        if not self.loaded:
            self.call_after_refresh(
                self.load_slack
            )  # every row is in, and on screen: its reads and imports wait for it
        keep = self.table.selected_key()
        self.rows = {r["name"]: r for r in rows}
        self._counted = {}
        self._counts = {}
        self.members = {}
        for name, row in self.rows.items():
            self._count(name, row)
            self.place_in_group(name, row)
        self.loaded = True
        self._sort()
        self.table.show(self._order(), self._cells_of, keep=keep)
        # 10,000 rows and the app's widgets live as long as the console: out of the cyclic
        # collector's reach, a full collection no longer stalls keys by ~100 ms (refcounting
        # still frees replaced rows)
        gc.freeze()

    def _take_some(self, rows: list[dict[str, Any]], asked: set[str]) -> None:
        self._dirty -= asked
        found = {r["name"]: r for r in rows}
        for name in asked:
            if name in found or name in self.rows:
                self._count(name, found.get(name))
            if name in found:
                is_new = name not in self.rows
                self.rows[name] = found[name]
                self.place_in_group(name, found[name])
                if is_new:
                    self._sorted.append(name)
                if is_new and screen_rows.matches_filter(found[name], self.filter_text):
                    self.table.append(name)
            elif name in self.rows:
                del self.rows[name]  # retired by a new definitions file
                self._sorted.remove(name)
                self.table.drop(name)
        self.table.update([*found, *groups.lines_of(found.values())])

    def _count(self, name: str, row: dict[str, Any] | None) -> None:
        """Keep the header's counts by state without walking 10,000 rows per change."""
        old = self._counted.pop(name, None)
        if old is not None:
            self._counts[old[0]] -= 1
            self._counts["alerts"] = self._counts.get("alerts", 0) - old[1]
        if row is not None:
            state, alerts = screen_rows.shown_state(row), int(row.get("open_alerts") or 0)
            self._counted[name] = (state, alerts)
            self._counts[state] = self._counts.get(state, 0) + 1
            self._counts["alerts"] = self._counts.get("alerts", 0) + alerts

    def _cells_of(self, name: str) -> dict[str, tuple[str, str]]:
        if groups.is_group_key(name):
            return self.group_line(name)
        return screen_rows.event_cells(self.rows[name], self.services.now(), self.slack.get(name))

    def _every_second(self) -> None:
        """Once a second: relative times and runtimes on screen move on; nothing is read."""
        if self.loaded:
            self.table.update(self.table.visible_keys())
        self.services.show_status()

    # -- order: filter and sort --------------------------------------------------------------

    def _sort(self) -> None:
        """Every event in the sort order (on a full load and a new sort only: a live update
        changes cells, not places)."""
        now, rows = self.services.now(), self.rows
        self._sorted = sorted(
            rows, key=lambda n: screen_rows.sort_key(self.sort_column, rows[n], now), reverse=self.sort_reverse
        )

    def _order(self) -> list[str]:
        """The events the table shows: the sorted ones the filter keeps (with no filter, each
        group as one line, its events below it when unfolded)."""
        if not self.filter_text:
            return groups.ordered(self._sorted, self.rows, self.unfolded) if self.members else self._sorted
        keeps, rows = screen_rows.row_filter(self.filter_text), self.rows
        return [n for n in self._sorted if keeps(rows[n])]

    def action_sort(self) -> None:
        at = SORTS.index(self.sort_column)
        self._sort_by(SORTS[(at + 1) % len(SORTS)], reverse=False)

    @on(EventTable.HeaderSelected)
    def _header_clicked(self, event: EventTable.HeaderSelected) -> None:
        column = event.column
        self._sort_by(column, reverse=not self.sort_reverse if column == self.sort_column else False)

    def _sort_by(self, column: str, *, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._sort()
        for c in COLUMNS:
            mark = (" ▼" if reverse else " ▲") if c.key == column else ""
            self.table.set_label(c.key, c.label + mark)
        self.table.reorder(self._order())
        self.notify(f"Sorted by {column}{' (reversed)' if reverse else ''}.", timeout=2)

    async def action_filter(self) -> None:
        box = await self._filter_box()
        box.add_class("-shown")
        box.value = self.filter_text
        box.focus()

    async def _filter_box(self) -> Input:
        """The filter's line, above the keys: made the first time `/` asks for it (hidden until
        then, it cost the first frame the Input's CSS, widget and styles, ~3 ms)."""
        for box in self.query("#filter").results(Input):
            return box
        box = Input(placeholder=FILTER_PLACEHOLDER, id="filter")
        await self.mount(box, before=self.query_one(KeyBar))
        return box

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._apply_filter(event.value.strip())

    def _apply_filter(self, text: str) -> None:
        self.query("#filter").remove_class("-shown")
        self.filter_text = text
        self.table.show(self._order(), self._cells_of, keep=self.table.selected_key())
        self.table.focus()
        self._show_counts()

    def action_back(self) -> None:
        shown = self.query("#filter.-shown")
        if shown or self.filter_text:
            for box in self.query("#filter").results(Input):
                box.value = ""
            self._apply_filter("")

    # -- selection, header, note ---------------------------------------------------------------

    def selected_event(self) -> str | None:
        key = self.table.selected_key()
        return None if groups.is_group_key(key) else key

    def has_active_run(self, target: str) -> bool | None:
        row = self.rows.get(target)
        return None if row is None else row["run_state"] in ACTIVE_STATES

    @on(EventTable.RowSelected)
    def _row_chosen(self, _event: EventTable.RowSelected) -> None:
        self.action_fold() if groups.is_group_key(self.table.selected_key()) else self.open("details")

    def reshow(self, keep: str | None) -> None:  # a group folded or unfolded
        self.table.show(self._order(), self._cells_of, keep=keep)

    @on(EventTable.RowHighlighted)
    def _row_highlighted(self, _event: EventTable.RowHighlighted) -> None:
        self._show_note()

    def _show_note(self) -> None:
        name = self.table.selected_key()
        row = self.rows.get(name) if name else None
        note = screen_rows.event_note(row) if row else ("no events match the filter" if self.loaded else "")
        if groups.is_group_key(name):
            note = groups.NOTE.format(key=name)
        self.query_one("#note", Static).update(Text(note, no_wrap=True, overflow="ellipsis"))

    def _show_counts(self) -> None:
        counts = {k: v for k, v in self._counts.items() if v or k == "alerts"}
        shown = len(self.table.shown_names()) if self.filter_text else None
        self.services.update_status(counts=counts, filter=self.filter_text, shown=shown, loading=not self.loaded)
