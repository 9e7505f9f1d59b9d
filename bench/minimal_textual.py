"""The floor W5 is judged against: a minimal Textual app (one static widget), started as a
process like `evman`, whose first frame shows MARKER."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

MARKER = "minimal-textual-first-paint"


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(MARKER)


if __name__ == "__main__":
    Minimal().run()
