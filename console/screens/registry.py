"""Every shared key of the console, in footer order: the keys that open a screen name its
factory here, and nothing else opens one; the keys of the request verbs come from the engine's
verb table (engine/verbs/table.py); the others are actions of the screen on top
(console/screens/base.py). Adding a screen is its module plus one line in KEYS."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from textual.binding import Binding, BindingType
from textual.screen import Screen

from evman.engine.verbs import VERBS


class Chosen(NamedTuple):
    """What the screen a key was pressed on has selected."""

    event: str | None
    run: int | None


Factory = Callable[[Chosen], Screen[Any]]

SCREENS: Final = ("alerts", "help", "overdue", "plan", "pools", "run_detail", "tree")
"""The modules (console/screens/) of the screens the keys open, imported at the first key that
opens one, or by `preload` after the console's first frame: the plan screen alone brings
foresight, the definitions and the schedules, a fifth of the console's imports."""


def _screen(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"evman.console.screens.{module}"), name)


def preload() -> None:
    """Import every screen a key opens (in a worker thread, once the first frame is shown):
    the first press of each key then pays no import."""
    for module in SCREENS:
        importlib.import_module(f"evman.console.screens.{module}")


class Key(NamedTuple):
    key: str
    action: str
    label: str
    what: str
    """What it does, for the help screen, the palette and the footer's tooltip."""
    opens: Factory | None = None
    """The screen it opens; None: `action` is an action of the screen on top."""
    needs_event: bool = False
    """Opens nothing until an event is selected (and says so)."""
    stacks: bool = True
    """False: pressed on the screen it opens, it opens no second one."""
    asks: bool = False
    """A request verb's key (a row of engine/verbs/table.py): the screen on top sends `action`."""

    @property
    def binding_action(self) -> str:
        if self.opens:
            return f"open('{self.action}')"
        return f"screen.request('{self.action}')" if self.asks else f"screen.{self.action}"

    @property
    def shown_key(self) -> str:
        return "?" if self.key == "question_mark" else self.key


KEYS: Final[tuple[Key, ...]] = (
    Key(
        "enter",
        "details",
        "Details",
        "Run details and output of the selected event",
        lambda c: _screen("run_detail", "RunDetailScreen")(c.event or "", run_id=c.run),
        needs_event=True,
        stacks=False,
    ),
    Key(
        "d",
        "tree",
        "Tree",
        "Dependency tree: what it needs, what follows it",
        lambda c: _screen("tree", "TreeScreen")(c.event or ""),
        needs_event=True,
    ),
    Key(
        "o",
        "overdue",
        "Overdue",
        "Runs that are late, overdue, missed or over their maximum",
        lambda c: _screen("overdue", "OverdueScreen")(),
        stacks=False,
    ),
    Key(
        "l",
        "alerts",
        "Alerts",
        "Alerts, unacknowledged first",
        lambda c: _screen("alerts", "AlertsScreen")(),
        stacks=False,
    ),
    Key(
        "p",
        "plan",
        "Plan",
        "Projected finishes against deadlines, most urgent first",
        lambda c: _screen("plan", "PlanScreen")(),
        stacks=False,
    ),
    *(Key(v.key, v.name, v.label, v.what, asks=True) for v in VERBS if v.key is not None),
    Key(
        "question_mark",
        "help",
        "Help",
        "Every key",
        lambda c: _screen("help", "HelpScreen")([(k.shown_key, k.what) for k in KEYS]),
        stacks=False,
    ),
    Key("q", "quit", "Quit", "Quit (stops the engine this console started)"),
    Key(
        "P",
        "pools",
        "Pools",
        "Each pool: the runs holding its slots, and those waiting for them in line order",
        lambda c: _screen("pools", "PoolsScreen")(),
        stacks=False,
    ),
    Key("A", "approve", "Approve", "Approve the selected run awaiting approval (asks for a comment)"),
    Key("X", "reject", "Reject", "Reject the selected run awaiting approval: it is skipped (asks for a comment)"),
)


def opener(action: str) -> Key | None:
    return next((k for k in KEYS if k.opens is not None and k.action == action), None)


def bindings() -> list[BindingType]:
    """The app's bindings for every shared key (a screen's own keys come before them)."""
    return [Binding(k.key, k.binding_action, k.label, tooltip=k.what) for k in KEYS]
