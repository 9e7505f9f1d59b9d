"""Groups as request targets: `group:NAME` names every event whose `group` is NAME (hold and
release take them all; trigger starts the group's first events, which the others follow), and
the run parameters a trigger gives."""

from __future__ import annotations

from typing import Any

from evman.engine.conditions.tree import GROUP_PREFIX
from evman.engine.coordination.params import ParamError
from evman.engine.quoting import quoted
from evman.engine.tick import coordination
from evman.engine.tick.context import Tick
from evman.engine.tick.readview import condition_of
from evman.engine.verbs.targets import RequestError


class GroupError(RequestError):
    """A group target that names nothing; the text says what to do."""


def members(tick: Tick, target: str) -> list[str]:
    """The defined events of group:NAME, by name."""
    group = target.removeprefix(GROUP_PREFIX)
    found = tick.view.group_members(group)
    if not found:
        known = tick.view.store.group_names()
        hint = f"the groups: {', '.join(known[:10])}" if known else 'no event has a group = "..." yet'
        raise GroupError(f"no defined event has group = {quoted(group)}; {hint}")
    return found


def entry_events(tick: Tick, target: str) -> list[str]:
    """The members no other member starts (on_success, on_failure.trigger) or waits for
    (`requires`): triggering these runs the group, the others following as they say."""
    names = members(tick, target)
    inside = set(names)
    followed: set[str] = set()
    for name in names:
        spec = tick.view.spec(name)
        if spec is None:
            continue
        followed |= set(spec.on_success) | set(spec.on_failure.trigger)
        if spec.requires is not None and (condition_of(spec.requires).events & inside - {name}):
            followed.add(name)
    return [name for name in names if name not in followed] or names[:1]


def given_params(args: dict[str, Any]) -> dict[str, Any] | None:
    """args {"params": {"customer": "acme"}}: the run parameters a trigger gives; None when it gives none."""
    given = args.get("params")
    if given is None:
        return None
    if not isinstance(given, dict):
        raise ParamError('params must be a JSON object of NAME: value, e.g. {"customer": "acme"}')
    return given


def params_for_each(tick: Tick, names: list[str], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each event a trigger starts is told, checked first for all (ParamError: no run is
    made). One event gets every given parameter; the events of a group each get those it
    declares, and a parameter none of them declares is refused."""
    if len(names) == 1:
        out = {names[0]: given}
    else:
        declared = {name: set(spec.params) if (spec := tick.view.spec(name)) else set() for name in names}
        unknown = sorted(set(given) - set().union(*declared.values()))
        if unknown:
            raise ParamError(f"no first event of the group declares parameter {quoted(unknown[0])}")
        out = {name: {k: v for k, v in given.items() if k in declared[name]} for name in names}
    for name, values in out.items():
        spec = tick.view.spec(name)
        if spec is not None:
            coordination.params_for(spec, tick.now, given=values, leader=None, repeats=None)
    return out
