"""How a LineTable draws (console/widgets/line_table.py): a row and the header as strips, and
how the columns share the terminal's width. Pure functions of the columns and widths."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

PAD: Final = 1
"""Blank cells either side of every column."""
_PAD: Final = " " * PAD


class Column(NamedTuple):
    key: str
    label: str
    width: int
    """Fixed width; for a `fit` column the least, for a `fill` column the least too."""
    fit: int = 0
    """Non-zero: grow to the longest value, up to this, while the terminal has room."""
    fill: bool = False
    """Take the room the other columns leave (the last column)."""
    yields: bool = False
    """May scroll off the right edge so that a `fit` column need not shrink."""


Cells = Mapping[str, tuple[str, str]]


class ToneStyles:
    """The Rich style of a cell: its row's base style plus its tone's colour (from the palette
    the getter gives), remembered, since every cell of every row asks; cleared when the theme
    changes."""

    def __init__(self, palette: Callable[[], Mapping[str, Style]]) -> None:
        self._palette = palette
        self._made: dict[tuple[Style, str], Style] = {}

    def style(self, base: Style, tone: str) -> Style:
        found = self._made.get((base, tone))
        if found is None:
            palette = self._palette()
            found = self._made[(base, tone)] = base + palette[tone] if tone in palette else base
        return found

    def clear(self) -> None:
        self._made.clear()


def row_strip(
    columns: Sequence[Column],
    widths: Mapping[str, int],
    cells: Cells,
    base: Style,
    style_of: Callable[[Style, str], Style],
) -> Strip:
    """One row as segments, built directly (a Rich Text render per row cost ~0.2 ms, a page
    of new rows most of a frame): each cell in its tone's style, the blanks between cells and
    the cells in the row's base style joined into one segment (every segment of a line costs
    again in Textual's filters and compositor)."""
    segments: list[Segment] = []
    plain = ""  # text in the base style, not yet a segment
    total = 0
    for column in columns:
        text, tone = cells[column.key]
        text = one_line(text)
        width = widths[column.key]
        size = cell_len(text)
        if size > width:
            text = set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
            size = width
        style = style_of(base, tone)
        if style == base:
            plain += _PAD + text
        else:
            segments += [Segment(plain + _PAD, base), Segment(text, style)]
            plain = ""
        plain += " " * (width - size + PAD)
        total += width + 2 * PAD
    segments.append(Segment(plain, base))
    return Strip(segments, total)


def header_strip(
    columns: Sequence[Column], widths: Mapping[str, int], labels: Mapping[str, str], style: Style, console: Any
) -> Strip:
    line = Text(no_wrap=True, end="")
    for column in columns:
        label, width = labels[column.key], widths[column.key]
        line.append(" " * PAD + label[:width].ljust(width) + " " * PAD)
    return Strip(list(Segment.apply_style(line.render(console), style)))


def fit_widths(columns: Sequence[Column], widths: Mapping[str, int], longest: int, room: int) -> dict[str, int]:
    """Fixed columns keep their width; the `fit` column grows to its `longest` value while
    there is room (a `yields` column may scroll off instead); `fill` takes the rest."""
    fixed = {c.key: c.width + 2 * PAD for c in columns if not c.fit and not c.fill}
    out = dict(widths)
    fit = next((c for c in columns if c.fit), None)
    if fit is not None:
        want = min(max(longest, fit.width), fit.fit)
        left = room - sum(fixed.values()) - 2 * PAD  # before the fill column's least width
        if left < want:
            left += sum(fixed[c.key] for c in columns if c.yields)
        out[fit.key] = max(fit.width, min(want, left))
    for c in columns:
        if c.fill:
            others = sum(out[o.key] + 2 * PAD for o in columns if o.key != c.key)
            out[c.key] = max(c.width, room - others - 2 * PAD)
    return out


def longest_value(
    column: Column | None, keys: Sequence[str], cells_of: Callable[[str], Cells], key_cells: dict[str, int]
) -> int:
    """The widest value of the `fit` column among these rows: their key when it is the key
    column (the events table's names, measured once each into `key_cells`)."""
    if column is None or not keys:
        return 0
    if column.key == "name":
        return max(key_cells.get(k) or key_cells.setdefault(k, cell_len(k)) for k in keys)
    return max(cell_len(cells_of(k)[column.key][0]) for k in keys)


def column_at(columns: Sequence[Column], widths: Mapping[str, int], x: int) -> str | None:
    """The column under content column `x` (a click on the header)."""
    left = 0
    for column in columns:
        right = left + widths[column.key] + 2 * PAD
        if left <= x < right:
            return column.key
        left = right
    return None


def one_line(text: str) -> str:
    """A cell is one line: line breaks and tabs in stored text become spaces."""
    return text.translate(_FLAT) if ("\n" in text or "\t" in text or "\r" in text) else text


_FLAT: Final = str.maketrans({"\n": " ", "\r": " ", "\t": " "})
