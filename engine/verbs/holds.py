"""The verbs about an event's hold: hold (no new run starts), release."""

from __future__ import annotations

from typing import Any

from evman.engine.tick.context import Tick
from evman.engine.verbs.targets import event_named


def hold(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    return _set_held(tick, event_named(tick, target), True, who)


def release(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    return _set_held(tick, event_named(tick, target), False, who)


def _set_held(tick: Tick, name: str, held: bool, who: str) -> str:
    tick.batch.held(name, held, who if held else None)
    tick.view.set_held(name, held)
    return f"{name} {'held' if held else 'released'}"
