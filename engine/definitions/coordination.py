"""An event's coordination keys: `uses` and `priority` (pools), `approval`, `group`, `params`."""

from __future__ import annotations

import difflib
import re
from typing import Any, Final

from evman.engine.coordination.params import is_name
from evman.engine.definitions.pools import POOL_NAME, POOL_NAME_MAX
from evman.engine.definitions.routes import check_route
from evman.engine.definitions.table import Context, Table, describe, without_none
from evman.engine.model import Approval, OnTimeout, Param
from evman.engine.quoting import quoted

APPROVAL_KEYS: Final = ("route", "timeout", "on_timeout")
PARAM_KEYS: Final = ("default", "required", "choices", "pattern", "description")
PRIORITY_RANGE: Final = (-1000, 1000)
COORDINATION: Final = ("uses", "priority", "approval", "group", "params")


def read_coordination(table: Table, context: Context) -> dict[str, Any]:
    return {
        "uses": _read_uses(table, context),
        "priority": _read_priority(table),
        "approval": _read_approval(table, context),
        "group": _read_group(table),
        "params": _read_params(table),
    }


# -- pools ---------------------------------------------------------------------------------------


def _read_uses(table: Table, context: Context) -> dict[str, int] | None:
    raw = table.get("uses", (dict, list), "a table of pool = slots, e.g. { warehouse = 1 }, or a list of pool names")
    if raw is None:
        return None
    if isinstance(raw, list):
        names = table.strings("uses")
        if names is None:
            return None
        twice = [i for i, name in enumerate(names) if name in names[:i]]
        for i in twice:
            table.error(f"uses[{i}]", f"{quoted(names[i])} is listed twice; write uses = {{ {names[i]} = 2 }}")
        uses = {name: 1 for name in names}
        keys = {name: f"uses[{i}]" for i, name in enumerate(names)}
        return None if twice or not _check_pools(table, uses, keys, context) else uses
    sub = Table(raw, table.problems, table.where, f"{table.prefix}uses.", (*table.at, "uses"))
    counts = {name: sub.integer(name, minimum=1) for name in raw}
    if any(count is None for count in counts.values()):
        return None
    uses = {name: int(count) for name, count in counts.items() if count is not None}
    return uses if _check_pools(table, uses, {name: f"uses.{name}" for name in uses}, context) else None


def _check_pools(table: Table, uses: dict[str, int], keys: dict[str, str], context: Context) -> bool:
    good = True
    for name, count in uses.items():
        if POOL_NAME.fullmatch(name) is None or len(name) > POOL_NAME_MAX:
            table.error(keys[name], f"{quoted(name)} is not a valid pool name")
            good = False
        elif context.pools is not None and name not in context.pools:
            close = difflib.get_close_matches(name, sorted(context.pools), n=1)
            hint = f"did you mean {quoted(close[0])}?" if close else f"add it to [pools], e.g. {name} = 2"
            table.error(keys[name], f"no pool {quoted(name)} in [pools]; {hint}")
            good = False
        elif context.pools is not None and count > context.pools[name]:
            table.error(
                keys[name],
                f"asks for {count} slots of pool {name}, which has {context.pools[name]}; a run could never "
                f"start: ask for at most {context.pools[name]}, or make the pool bigger",
            )
            good = False
    return good


def _read_priority(table: Table) -> int | None:
    low, high = PRIORITY_RANGE
    value = table.get("priority", (int,), f"a whole number from {low} to {high}")
    if value is not None and not low <= value <= high:
        table.error("priority", f"is {value}; expected a whole number from {low} to {high} (higher goes first)")
        return None
    return value  # type: ignore[no-any-return]


# -- approval --------------------------------------------------------------------------------------


def _read_approval(table: Table, context: Context) -> Approval | None:
    sub = table.sub("approval", APPROVAL_KEYS)
    if sub is None:
        return None
    route = sub.string("route", blank_ok=False)
    if route is not None:
        check_route(sub, "route", route, context.routes)
    timeout = sub.duration("timeout", positive=True)
    on_timeout = sub.choice("on_timeout", OnTimeout)
    if on_timeout is not None and "timeout" not in sub.data:
        sub.error("on_timeout", 'says what happens when the timeout passes, but there is none; add timeout = "4h"')
    return Approval(**without_none({"route": route, "timeout_s": timeout, "on_timeout": on_timeout}))


# -- groups ----------------------------------------------------------------------------------------


def _read_group(table: Table) -> str | None:
    name = table.string("group")
    if name is not None and (POOL_NAME.fullmatch(name) is None or len(name) > POOL_NAME_MAX):
        table.error(
            "group",
            f"{quoted(name)} is not a valid group name; expected lowercase letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit, at most {POOL_NAME_MAX} characters",
        )
        return None
    return name


# -- run parameters --------------------------------------------------------------------------------


def _read_params(table: Table) -> dict[str, Param] | None:
    raw = table.get("params", (dict,), 'a table of NAME = { default = "..." }')
    if raw is None:
        return None
    scheduled = "schedule" in table.data
    params: dict[str, Param] = {}
    good = True
    for name, value in raw.items():
        param = _read_param(table, name, value, scheduled=scheduled)
        if param is None:
            good = False
        else:
            params[name] = param
    return params if good else None


def _read_param(table: Table, name: str, value: object, *, scheduled: bool) -> Param | None:
    if not is_name(name):
        table.error(
            f"params.{name}",
            "is not a usable parameter name; expected letters, digits and '_', not starting with a digit "
            "(a command sees it as EVMAN_PARAM_<NAME>, a callable as a keyword argument)",
        )
        return None
    if not isinstance(value, dict):
        table.error(f"params.{name}", f'got {describe(value)}; expected a table such as {{ default = "x" }}')
        return None
    sub = Table(value, table.problems, table.where, f"{table.prefix}params.{name}.", (*table.at, "params", name))
    sub.check_keys(PARAM_KEYS)
    before = len(table.problems.lines)
    param = Param(
        **without_none(
            {
                "default": sub.string("default"),
                "required": sub.boolean("required"),
                "choices": sub.strings("choices"),
                "pattern": _read_pattern(sub),
                "description": sub.string("description"),
            }
        )
    )
    _check_param(sub, param, scheduled)
    return param if len(table.problems.lines) == before else None


def _read_pattern(sub: Table) -> str | None:
    pattern = sub.string("pattern", blank_ok=False)
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        sub.error("pattern", f'is not a regular expression ({exc}); expected e.g. "[a-z]+"')
        return None
    return pattern


def _check_param(sub: Table, param: Param, scheduled: bool) -> None:
    if param.required and param.default is not None:
        sub.error("required", "a parameter with a default never lacks a value; drop required, or the default")
    elif param.required and scheduled:
        sub.error(
            "required",
            "its event has a schedule, whose runs nobody gives a value; give it a default instead of required",
        )
    if "choices" in sub.data and not sub.data["choices"]:
        sub.error("choices", "is empty; list the values allowed, or drop choices")
    default = param.default
    if default is not None and param.choices and default not in param.choices and "{date}" not in default:
        sub.error("default", f"{quoted(default)} is not one of its choices")
    if default is not None and param.pattern and "{date}" not in default and not re.fullmatch(param.pattern, default):
        sub.error("default", f"{quoted(default)} does not match its pattern {quoted(param.pattern)}")
