"""The header: which engine drives the database, how fresh it is, counts by state, the time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from rich.text import Text
from textual.widget import Widget

from evman.console.views import screen_rows
from evman.console.widgets.tones import Palette

COUNT_ORDER: Final = tuple(screen_rows.SHOWN_STATES)
MODE_TEXT: Final = {
    "starting": ("… starting engine", "muted"),
    "engine": ("● engine here", "ok"),
    "attached": ("◆ attached to engine", "active"),
    "none": ("○ no engine", "warn"),
    "silent": ("○ engine silent", "bad"),
    "stopped": ("○ engine stopped", "warn"),
    "stopping": ("… stopping engine", "warn"),
}


class Status(NamedTuple):
    """Everything the header shows; the app and the screen replace parts of it."""

    db_name: str = ""
    mode: str = "starting"
    pid: int | None = None
    host: str | None = None
    heartbeat_at: datetime | None = None
    now: datetime | None = None
    zone: tzinfo | None = None
    readonly: bool = False
    operator: str = ""
    counts: Mapping[str, int] = MappingProxyType({})
    filter: str = ""
    shown: int | None = None
    loading: bool = True
    engines: int | None = None
    """Live engines of a database several share (PostgreSQL); None on SQLite."""

    def but(self, **changes: Any) -> Status:
        return self._replace(**changes)


class StatusBar(Widget):
    """Two lines: the engine and the time; the counts by state (and the filter)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = Status()
        self.palette: Palette = {}

    def show(self, status: Status) -> None:
        if status != self.status:
            self.status = status
            self.refresh()

    def render(self) -> Text:
        width = max(20, self.size.width)
        counts, right = self._counts_line(), self._filter_line()
        if counts.cell_len + right.cell_len > width:
            counts = self._counts_line(compact=True)
            if counts.cell_len + right.cell_len > width and not self.status.filter:
                right = Text("")
        return Text("\n").join(
            [self._fit(self._engine_line(), self._clock_line(), width), self._fit(counts, right, width)]
        )

    def _style(self, tone: str) -> Any:
        return self.palette.get(tone, "")

    def _engine_line(self) -> Text:
        s = self.status
        line = Text(" evman ", style="bold")
        line.append(s.db_name, style=self._style("active"))
        line.append("  ")
        if s.readonly:
            line.append("READ-ONLY ", style=self._style("warn"))
        text, tone = MODE_TEXT.get(s.mode, (s.mode, "plain"))
        line.append(text, style=self._style(tone))
        if s.pid is not None and s.mode in ("engine", "attached", "silent"):
            where = f" on {s.host}" if s.mode != "engine" and s.host else ""
            line.append(f" (pid {s.pid}{where})", style=self._style("muted"))
        if s.engines is not None:
            line.append(f" · {s.engines} live engine{'s' if s.engines != 1 else ''}", style=self._style("muted"))
        if s.heartbeat_at is not None and s.now is not None and s.mode != "none":
            beat = screen_rows.age((s.now - s.heartbeat_at).total_seconds())
            line.append(f" · beat {beat} ago", style=self._style("muted"))
        return line

    def _clock_line(self) -> Text:
        s = self.status
        if s.now is None:
            return Text("")
        local = s.now.astimezone(s.zone)
        line = Text(local.strftime("%H:%M:%S %Z"), style="bold")
        line.append(f" · {s.now.strftime('%H:%M:%S')} UTC ", style=self._style("muted"))
        return line

    def _counts_line(self, *, compact: bool = False) -> Text:
        """Events by state; `compact`: symbols and numbers only, for narrow terminals."""
        s = self.status
        line = Text(" ")
        if s.loading:
            line.append("loading events…", style=self._style("muted"))
            return line
        total = sum(v for k, v in s.counts.items() if k != "alerts")
        line.append(f"{total} events ", style="bold")
        for state in COUNT_ORDER:
            count = s.counts.get(state)
            if count:
                symbol = screen_rows.STATE_SYMBOLS.get(state, "")
                words = f" {symbol}{count}" if compact else f" {symbol} {count} {state}"
                line.append(words, style=self._style(screen_rows.STATE_TONES[state]))
        alerts = s.counts.get("alerts", 0)
        if alerts:
            line.append(f"  ⚠{alerts} unacked" if compact else f"  ⚠ {alerts} unacked", style=self._style("bad"))
        return line

    def _filter_line(self) -> Text:
        s = self.status
        if not s.filter:
            return Text(f"by {s.operator} " if s.operator else "", style=self._style("muted"))
        shown = "" if s.shown is None else f" ({s.shown} shown)"
        return Text(f"filter: {s.filter}{shown} ", style=self._style("warn"))

    @staticmethod
    def _fit(left: Text, right: Text, width: int) -> Text:
        """`left`, then `right` flush right; the left part is cut first when room is short."""
        room = width - right.cell_len
        if room < left.cell_len:
            left.truncate(max(0, room), overflow="ellipsis")
        gap = max(0, width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right)
