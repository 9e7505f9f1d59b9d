"""The command palette's evman commands: every console action, by name."""
from __future__ import annotations

from functools import partial
from typing import Final

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.screens.base import ACTION_KEYS

EXTRA_COMMANDS: Final = (
    ("filter", "Filter events", "/ on the events screen: name, state or driver"),
    ("sort", "Sort events by the next column", "s on the events screen"),
    ("back", "Back", "escape: the previous screen"),
    ("ack_event", "Ack event: every open alert of the selected alert's event", "A on the alerts screen"),
)


def _commands() -> list[tuple[str, str, str]]:
    """(action, title, help) for every action a key reaches."""
    out = [(action, f"{label}: {what}", f"key {'?' if key == 'question_mark' else key}")
           for key, action, label, what in ACTION_KEYS]
    out += [(action, title, help_text) for action, title, help_text in EXTRA_COMMANDS]
    return out


class EvmanCommands(Provider):
    """Runs the action on the screen the palette was opened from, as its key would."""

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
        return hasattr(self.screen, f"action_{action}")

    async def _run(self, action: str) -> None:
        await self.screen.run_action(action)
