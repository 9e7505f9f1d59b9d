"""`?`: every key, what it does, and how the console talks to the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

EXTRA_KEYS = (
    (
        "/",
        "Filter events: words match name, state or driver; state:failed, driver:ops, name:feed. "
        "Enter applies, Escape clears",
    ),
    ("s", "Sort by the next column (click a header to sort by it; again to reverse)"),
    ("j / k", "Down / up, like the arrows"),
    ("escape, q", "Back to the previous screen (on the events table: Escape clears the filter, q quits)"),
    ("0, home", "Straight back to the events table from any screen"),
    ("A", "(alerts screen) acknowledge every open alert of the selected alert's event"),
    ("ctrl+p", "Command palette: every action by name"),
)
ABOUT = (
    "Keys never change a run directly: each action writes a row in the requests table, "
    "signed with your name, and the engine acts on its next tick. The outcome comes back "
    "as a notification. With --readonly the console can look but not act."
)


class HelpScreen(ModalScreen[None]):
    """Shows the shared keys it is given (the registry's), then the screens' own keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in self.keys:
            table.add_row(key, what)
        for key, what in EXTRA_KEYS:
            table.add_row(key, what)
        with VerticalScroll(id="help"):
            yield Static(Text("evman console keys", style="bold"), id="help-title")
            yield Static(table)
            yield Static(ABOUT, id="help-about")

    def action_close(self) -> None:
        self.dismiss(None)
