"""The command palette's evman commands: every console action, by name."""

from __future__ import annotations

from functools import partial
from typing import Final

from textual.command import DiscoveryHit, Hit, Hits, Provider

from evman.console.screens.registry import KEYS

EXTRA_COMMANDS: Final = (
    ("screen.filter", "Filter events", "/ on the events screen: name, state or driver"),
    ("screen.sort", "Sort events by the next column", "s on the events screen"),
    ("screen.back", "Back", "escape or q: the previous screen"),
    ("screen.go_home", "Events table", "0 or home: straight back to the events table"),
    ("screen.ack_event", "Ack event: every open alert of the selected alert's event", "A on the alerts screen"),
)


def _commands() -> list[tuple[str, str, str]]:
    """(action as the app runs it, title, help) for every action a key reaches."""
    out = [(k.binding_action, f"{k.label}: {k.what}", f"key {k.shown_key}") for k in KEYS]
    out += [(action, title, help_text) for action, title, help_text in EXTRA_COMMANDS]
    return out


class EvmanCommands(Provider):
    """Runs the action for the screen the palette was opened from, as its key would."""

    async def discover(self) -> Hits:
        for action, title, help_text in _commands():
            if self._available(action):
                yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, title, help_text in _commands():
            score = matcher.match(title)
            if score > 0 and self._available(action):
                yield Hit(score, matcher.highlight(title), partial(self._run, action), help=help_text)

    def _available(self, action: str) -> bool:
        if not action.startswith("screen."):
            return True
        name = action.removeprefix("screen.").split("(", 1)[0]
        return hasattr(self.screen, f"action_{name}")

    async def _run(self, action: str) -> None:
        if action.startswith("screen."):  # the palette may still be on top: name the screen
            await self.screen.run_action(action.removeprefix("screen."))
        else:
            await self.app.run_action(action)
