"""The seam between the screens and the app: what a screen may ask of the console (`Services`),
and the messages the app sends every screen when the database changes. Nothing here imports
the app or a screen."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

from evman.console.widgets.tones import Palette
from evman.engine.store import Store

if TYPE_CHECKING:
    from evman.engine.engine import Change


class Services(Protocol):
    """The console app as its screens see it (console/app/evman_app.py's EvmanApp provides it)."""

    palette: Palette
    zone: tzinfo
    db_path: Path
    mode: str
    """Who drives the database: starting, engine, attached, none, silent, stopped, stopping."""

    def now(self) -> datetime: ...

    def reading(self) -> AbstractContextManager[Store]:
        """The console's Store, for one worker thread at a time."""
        ...

    def send_request(self, verb: str, target: str, args: dict[str, Any] | None = None) -> None: ...

    def refuse_if_readonly(self, verb: str, target: str) -> bool: ...

    def show_status(self) -> None: ...

    def update_status(self, **changes: Any) -> None: ...

    def open_screen(self, name: str) -> None:
        """Open the screen the registry (console/screens/registry.py) names, for what the
        current screen has selected."""
        ...

    def go_home(self) -> None:
        """Back to the events table, from any depth."""
        ...

    def quit_cleanly(self) -> None: ...

    def reading_first_rows(self, store: Store) -> None:
        """The events screen is about to read its first rows (in its thread, under the
        store's lock): the watcher takes its first look now, so that it sees what changes
        after them."""
        ...

    def first_frame_shown(self) -> None:
        """The first screen has its rows on screen: start what could wait for that (the
        engine, the imports of the screens no key has opened yet)."""
        ...


class EngineChanged(Message, bubble=False):
    """The in-process engine finished a tick that changed something (posted from its thread)."""

    def __init__(self, changes: list[Change]) -> None:
        super().__init__()
        self.changes = changes

    @property
    def events(self) -> set[str]:
        """Event names, and run:N / alert:N request targets still to be resolved."""
        return {c.event for c in self.changes}


class DatabaseChanged(Message, bubble=False):
    """Another connection committed (an attached console's view of a remote engine's work)."""

    def __init__(self, events: set[str], *, definitions: bool = False) -> None:
        super().__init__()
        self.events = events
        self.definitions = definitions
