"""The footer: the keys of the focused widget and the screen, in one line of text.

Textual's Footer mounts a widget per key; on every screen switch that recomposition cost
about 100 ms at 200x60 (bench/console_bench.py), more than the rest of the switch. This draws
the same bindings as one Text."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from evman.console.widgets.tones import Palette


class KeyBar(Widget):
    """Shows the active bindings with `show=True`: the focused widget's, the screen's, the
    app's, then Back; never reads the store."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.palette: Palette = {}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Any) -> None:
        self.refresh()

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        key_style = self.get_component_rich_style("key-bar--key")
        seen: set[str] = set()
        shown = [a for a in self.screen.active_bindings.values() if a.binding.show]
        shown.sort(key=lambda a: a.binding.action == "back")  # the way out comes last
        for active in shown:
            binding = active.binding
            if binding.action in seen:
                continue
            seen.add(binding.action)
            style = key_style if active.enabled else self.get_component_rich_style("key-bar--disabled")
            line.append(f" {self.app.get_key_display(binding)} ", style=style)
            line.append(f"{binding.description} ")
        return line

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--disabled"}
