"""The verbs about an event's hold: hold (no new run starts; by name, pattern "etl-*" or
tag:NAME or group:NAME, optionally until a time) and release; and the release of a hold whose time came."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from evman.engine.clock import iso, parse_iso
from evman.engine.quoting import quoted
from evman.engine.timing.durations import parse_duration
from evman.engine.verbs.targets import RequestError

if TYPE_CHECKING:
    from evman.engine.tick.context import Tick


def hold(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    names = targets(tick, target)
    until = _until(args, tick.now)
    for name in names:
        tick.batch.held(name, True, who, iso(until))
        tick.view.set_held(name, True, until)
    then = "" if until is None else f" until {iso(until)}"
    return f"{_names_text(names)} held{then}"


def release(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    names = targets(tick, target)
    for name in names:
        tick.batch.held(name, False, None)
        tick.view.set_held(name, False)
    return f"{_names_text(names)} released"


def release_ended_holds(tick: Tick) -> None:
    """Release the holds whose `until` has come (one comparison a tick when none has)."""
    for name in tick.view.holds_ended(tick.now):
        tick.batch.held(name, False, None)
        tick.view.set_held(name, False)
        tick.change("event", name, None, None, "released: its hold ended")


def targets(tick: Tick, target: str) -> list[str]:
    """The defined events `target` names: one name, a glob pattern, tag:NAME or group:NAME."""
    store = tick.view.store
    if target.startswith("group:"):
        members = tick.view.group_members(target[6:])
        if not members:
            raise RequestError(
                f"no defined event has group = {quoted(target[6:])}; `evman show E` shows an event's group"
            )
        return members
    if target.startswith("tag:"):
        tag = target[4:]
        found = sorted(n for n in store.event_names() if (spec := tick.view.spec(n)) and tag in spec.tags)
        if not found:
            raise RequestError(f"no event has the tag {quoted(tag)}; `evman show E` lists an event's tags")
        return found
    if is_pattern(target):
        found = sorted(fnmatch.filter(store.event_names(), target))
        if not found:
            raise RequestError(f"no event matches {quoted(target)}; `evman list` shows the defined events")
        return found
    if tick.view.spec(target) is None:
        raise RequestError(f"unknown event {quoted(target)}; `evman list` shows the defined events")
    return [target]


def is_pattern(target: str) -> bool:
    return any(c in target for c in "*?[")


def until_arg(text: str, now: datetime) -> str:
    """--until as the request carries it (UTC ISO): an ISO time (naive: the machine's local
    time) or +DURATION from `now`. ValueError, in words, for anything else."""
    if text.strip().startswith("+"):
        return (now + timedelta(seconds=parse_duration(text.strip()[1:]))).isoformat()
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO time nor +DURATION; examples: 2026-12-24T18:00, +2h") from None
    return (value if value.tzinfo else value.astimezone()).astimezone(UTC).isoformat()


def _until(args: dict[str, Any], now: datetime) -> datetime | None:
    text = args.get("until")
    if text is None:
        return None
    until = parse_iso(str(text))
    if until is None or until.tzinfo is None:
        raise RequestError(
            f"until {quoted(text)} is not an ISO time with an offset; example: 2026-12-24T18:00:00+00:00"
        )
    if until <= now:
        raise RequestError(f"until {iso(until)} has passed; give a later time")
    return until


def _names_text(names: list[str]) -> str:
    return (
        names[0]
        if len(names) == 1
        else f"{len(names)} events ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
    )
