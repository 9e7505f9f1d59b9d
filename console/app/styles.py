"""The console's styles: evman.tcss styles the events screen, the first one shown, and is read as
the app starts; screens.tcss styles the screens a key opens and the dialogs, and is read once the
first frame is on screen, or sooner, when a screen is pushed before that. Textual parses every
rule of an app's CSS before its first frame: the other screens' rules cost that frame ~4 ms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from textual.app import App

LATER_CSS: Final = Path(__file__).with_name("screens.tcss")


class StyledApp(App[int]):
    """The app's styles, the other screens' added when they are first wanted."""

    CSS_PATH = Path(__file__).with_name("evman.tcss")

    def read_later_css(self) -> None:
        """screens.tcss into the stylesheet, once: only it is parsed; every node is styled again."""
        if self.stylesheet.has_source(str(LATER_CSS)):
            return
        self.stylesheet.read(LATER_CSS)
        self.stylesheet.parse()
        self.stylesheet.update(self)

    def push_screen(self, *args: Any, **kwargs: Any) -> Any:
        """Every screen but the first is styled by screens.tcss."""
        self.read_later_css()
        return super().push_screen(*args, **kwargs)
