"""A line-API table that draws only the rows on screen, one cached Strip a row.

Why not DataTable: at 10,000 rows and 200x60, DataTable re-renders every visible cell through
Rich after any update_cell (its caches are keyed by a global update counter) and measures every
new cell on add_row: 100-300 ms a refresh, sort, filter or screen (bench/console_bench.py). Here a
row is one strip of segments (console/widgets/line_paint.py), made once and cached until that
row changes: a key costs a few ms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Final, TypeAlias

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from evman.console.widgets.line_paint import (
    PAD,
    Cells,
    Column,
    ToneStyles,
    column_at,
    fit_widths,
    header_strip,
    longest_value,
    row_strip,
)
from evman.console.widgets.tones import Palette, styled

__all__ = ["Cells", "Column", "HeaderSelected", "LineTable", "RowHighlighted", "RowSelected"]


MOTION_KEYS: Final = (
    ("up", "cursor_up", "Up"),
    ("down", "cursor_down", "Down"),
    ("k", "cursor_up", "Up"),
    ("j", "cursor_down", "Down"),
    ("pageup", "page_up", "Page up"),
    ("pagedown", "page_down", "Page down"),
    ("home", "first", "First"),
    ("end", "last", "Last"),
    ("left", "scroll_left", "Left"),
    ("right", "scroll_right", "Right"),
)
"""Keys that move the cursor or scroll (j/k as in vi, k9s, lazydocker); not in the footer."""


class RowHighlighted(Message, namespace="line_table"):
    """The cursor moved to the row `key` (None: the table is empty)."""

    def __init__(self, table: LineTable, key: str | None) -> None:
        super().__init__()
        self.table = table
        self.key = key

    @property
    def control(self) -> LineTable:
        return self.table


class RowSelected(RowHighlighted, namespace="line_table"):
    """Enter (or a click) on a row."""


class HeaderSelected(Message, namespace="line_table"):
    """A click on the header of `column`."""

    def __init__(self, table: LineTable, column: str) -> None:
        super().__init__()
        self.table = table
        self.column = column

    @property
    def control(self) -> LineTable:
        return self.table


class LineTable(ScrollView, can_focus=True):
    """Shows the rows it is given (keys, cells drawn by a callable or given); never reads
    the store.

    `show()` replaces the rows; `update()` redraws named rows whose cells changed; `reorder()`
    sorts them; `sync()` takes a whole small table at once. The cursor stays on its key through
    all of them, and the scroll position through updates."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"line-table--header", "line-table--cursor", "line-table--cursor-blurred"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Details"),
        *(Binding(key, action, label, show=False) for key, action, label in MOTION_KEYS),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False, init=False)

    RowHighlighted: TypeAlias = RowHighlighted
    RowSelected: TypeAlias = RowSelected
    HeaderSelected: TypeAlias = HeaderSelected

    def __init__(self, columns: Sequence[Column], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = tuple(columns)
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, Cells] = {}
        self._strips: dict[str, Strip] = {}
        self._render_row: Callable[[str], Cells] | None = None
        self._widths: dict[str, int] = {c.key: c.width for c in self.columns}
        self._labels: dict[str, str] = {c.key: c.label for c in self.columns}
        self._fit_column = next((c for c in self.columns if c.fit), None)
        self._longest = self._fit_column.width if self._fit_column else 0
        self.palette: Palette = {}
        self._key_cells: dict[str, int] = {}
        """Display width of each key seen (the events table's names): a filter that shows
        10,000 rows again measures none of them."""
        self._tones = ToneStyles(lambda: self.palette)
        self.fills = 0
        """How many times show() replaced the rows (live updates never do)."""
        self._frame: tuple[int, int, Style] | None = None  # render_lines' width, scroll_x, base style

    # -- what the screen calls ----------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    def show(self, order: Sequence[str], render_row: Callable[[str], Cells], *, keep: str | None = None) -> None:
        """Replace the rows with `order` (event names), drawn by `render_row(name)` when seen."""
        self.fills += 1
        self._render_row = render_row
        self._order = list(order)
        self._index = {name: i for i, name in enumerate(self._order)}
        self._cells.clear()
        self._strips.clear()
        self._longest = self._longest_of(self._order)
        self._fit_columns()
        target = self._index.get(keep, 0) if keep is not None else 0
        self._set_cursor(target, force=True)
        self.refresh()

    def update(self, names: Iterable[str]) -> None:
        """Redraw these rows if their cells changed (rows not shown are ignored)."""
        if self._render_row is None:
            return
        top, bottom = self._visible_range()
        for name in names:
            index = self._index.get(name)
            if index is None:
                continue
            new = self._render_row(name)
            if self._cells.get(name) == new:
                continue
            self._cells[name] = new
            self._strips.pop(name, None)
            if top <= index < bottom:
                self._refresh_row(index)

    def append(self, name: str) -> None:
        if name in self._index:
            return
        self._index[name] = len(self._order)
        self._order.append(name)
        if self._longest_of([name]) > self._longest:
            self._longest = self._longest_of([name])
            self._fit_columns()
        self._update_virtual_size()
        self.refresh()

    def drop(self, name: str) -> None:
        if name not in self._index:
            return
        keep = self.selected_key()
        self._order.remove(name)
        self._index = {n: i for i, n in enumerate(self._order)}
        self._cells.pop(name, None)
        self._strips.pop(name, None)
        self._update_virtual_size()
        self._set_cursor(self._index.get(keep or "", min(self.cursor_row, len(self._order) - 1)), force=True)
        self.refresh()

    def reorder(self, order: Sequence[str]) -> None:
        """Put the rows in `order` (the same names), keeping the cursor on its event."""
        keep = self.selected_key()
        self._order = [n for n in order if n in self._index]
        self._index = {name: i for i, name in enumerate(self._order)}
        self._set_cursor(self._index.get(keep or "", 0), force=True)
        self.refresh()

    def sync(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Show exactly `rows` (key, cells), in order: for short tables re-read whole."""
        cells = dict(rows)
        order = [key for key, _ in rows]
        if order != self._order:
            keep, scroll_y = self.selected_key(), self.scroll_y
            self.show(order, cells.__getitem__, keep=keep)
            if keep not in self._index:
                self.scroll_to(y=scroll_y, animate=False, immediate=True)
        else:
            self._render_row = cells.__getitem__
            self.update(order)

    def _longest_of(self, keys: Sequence[str]) -> int:
        return longest_value(self._fit_column, keys, self._cells_of, self._key_cells)

    def restyle(self) -> None:
        """The theme changed: draw every row again in the new colours."""
        self._strips.clear()
        self._tones.clear()
        self.refresh()

    def set_label(self, column: str, label: str) -> None:
        self._labels[column] = label
        self.refresh(Region(0, 0, self.size.width, 1))

    def selected_key(self) -> str | None:
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def move_to(self, name: str) -> bool:
        index = self._index.get(name)
        if index is None:
            return False
        self._set_cursor(index)
        return True

    def visible_keys(self) -> list[str]:
        """The events on screen now (plus a few either side), for refreshes."""
        top, bottom = self._visible_range()
        return self._order[max(0, top - 5) : bottom + 5]

    def shown_names(self) -> list[str]:
        return list(self._order)

    def row_texts(self, name: str) -> list[Text]:
        """The cells of a row as they are drawn (for tests and snapshots of state)."""
        cells = self._cells_of(name)
        return [styled(cells[c.key], self.palette) for c in self.columns]

    # -- cursor and keys -----------------------------------------------------------------

    def _set_cursor(self, index: int, *, force: bool = False) -> None:
        index = max(0, min(index, len(self._order) - 1))
        old = self.cursor_row
        if index == old and not force:
            return
        self.set_reactive(LineTable.cursor_row, index)
        self._refresh_row(old)
        self._refresh_row(index)
        self._scroll_to_cursor()
        self.post_message(self.RowHighlighted(self, self.selected_key()))

    def _scroll_to_cursor(self) -> None:
        height = self._page()
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_up(self) -> None:
        self._set_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._set_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._set_cursor(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self._set_cursor(self.cursor_row + self._page())

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(len(self._order) - 1)

    def action_select_cursor(self) -> None:
        if self._order:
            self.post_message(self.RowSelected(self, self.selected_key()))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = column_at(self.columns, self._widths, offset.x + int(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderSelected(self, column))
            return
        index = int(self.scroll_y) + offset.y - 1
        if index == self.cursor_row:
            self.action_select_cursor()  # a click on the selected row opens it, as DataTable's does
        elif 0 <= index < len(self._order):
            self._set_cursor(index)

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    # -- drawing -----------------------------------------------------------------------------

    def _visible_range(self) -> tuple[int, int]:
        top = int(self.scroll_y)
        return top, top + self._page()

    def _refresh_row(self, index: int) -> None:
        top, bottom = self._visible_range()
        if top <= index < bottom:
            self.refresh(Region(0, index - top + 1, self.size.width, 1))

    def _cells_of(self, name: str) -> Cells:
        cells = self._cells.get(name)
        if cells is None:
            assert self._render_row is not None
            cells = self._cells[name] = self._render_row(name)
        return cells

    def render_lines(self, crop: Region) -> list[Strip]:
        """What every line needs, looked up once (the base style walks the ancestors' styles)."""
        self._frame = self._frame_facts()
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_facts(self) -> tuple[int, int, Style]:
        return self.scrollable_content_region.width, int(self.scroll_x), self.rich_style

    def render_line(self, y: int) -> Strip:
        width, scroll_x, base = self._frame or self._frame_facts()
        if y == 0:
            return self._header().crop(scroll_x, scroll_x + width).extend_cell_length(width, base)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, base)
        name = self._order[index]
        strip = self._strips.get(name)
        if strip is None:
            strip = self._strips[name] = row_strip(
                self.columns, self._widths, self._cells_of(name), base, self._tones.style
            )
        if index == self.cursor_row:
            cursor = self.get_component_rich_style(
                "line-table--cursor" if self.has_focus else "line-table--cursor-blurred"
            )
            strip = strip.extend_cell_length(self.virtual_size.width, base)
            strip = Strip(list(Segment.apply_style(strip, post_style=cursor)), strip.cell_length)
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width, base)

    def _header(self) -> Strip:
        style = self.get_component_rich_style("line-table--header")
        return header_strip(self.columns, self._widths, self._labels, style, self.app.console)

    # -- layout ---------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        room = self.scrollable_content_region.width or self.size.width
        widths = fit_widths(self.columns, self._widths, self._longest, room)
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
            self.refresh()
        self._update_virtual_size()

    def _update_virtual_size(self) -> None:
        width = sum(w + 2 * PAD for w in self._widths.values())
        self.virtual_size = Size(width, len(self._order) + 1)
