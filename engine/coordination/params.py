"""Run parameters: checking what a run is told against its event's declaration, the values it
takes by default or from its leader, and how a command sees them."""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from evman.engine.model import Param
from evman.engine.quoting import quoted

NAME_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VALUE_MAX_CHARS: Final = 4096
ENV_PREFIX: Final = "EVMAN_PARAM_"
DATE_MARK: Final = "{date}"
"""In a default: the run's business date (its scheduled day in the event's timezone, YYYY-MM-DD)."""


class ParamError(ValueError):
    """A value refused, in words that name the parameter and say what is allowed."""


def is_name(name: str) -> bool:
    """A parameter name a command's environment and a callable's keywords can both carry."""
    return NAME_PATTERN.fullmatch(name) is not None and not keyword.iskeyword(name)


def as_text(name: str, value: Any) -> str:
    """A given value as the text a run receives: strings as they are, numbers and booleans
    written out; anything else refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ParamError(f"parameter {name}: got {type(value).__name__}; expected text")
    if "\0" in value:
        raise ParamError(f"parameter {name}: contains a NUL character; expected text without it")
    if len(value) > VALUE_MAX_CHARS:
        raise ParamError(f"parameter {name}: {len(value)} characters; expected at most {VALUE_MAX_CHARS}")
    return value


def check_value(name: str, param: Param, value: str) -> None:
    if param.choices and value not in param.choices:
        raise ParamError(
            f"parameter {name}: {quoted(value)} is not one of its choices ({', '.join(map(quoted, param.choices))})"
        )
    if param.pattern is not None and re.fullmatch(param.pattern, value) is None:
        raise ParamError(f"parameter {name}: {quoted(value)} does not match its pattern {quoted(param.pattern)}")


def business_date(scheduled_for: datetime, timezone: str) -> str:
    return scheduled_for.astimezone(ZoneInfo(timezone)).date().isoformat()


def resolve(declared: Mapping[str, Param], given: Mapping[str, Any], *, event: str, date: str) -> dict[str, str]:
    """The values a run of `event` takes: each given one (checked), each missing one's default.
    Raises ParamError for an undeclared name, a required one missing, or a
    value its choices or pattern refuse."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise ParamError(
            f"{event} declares no parameter {quoted(unknown[0])}; its parameters: {names} "
            f"(declare one with params = {{ {unknown[0]} = {{ }} }})"
        )
    values: dict[str, str] = {}
    for name, param in declared.items():
        if name in given:
            values[name] = as_text(name, given[name])
        elif param.default is not None:
            values[name] = param.default.replace(DATE_MARK, date)
        elif param.required:
            raise ParamError(f"{event} needs parameter {name}; give it: evman trigger {event} --param {name}=VALUE")
        else:
            continue
        check_value(name, param, values[name])
    return values


def inherited(
    declared: Mapping[str, Param], leader: Mapping[str, str] | None, *, event: str, date: str
) -> dict[str, str]:
    """What a follower started by its leader's success receives: the leader's parameters when it
    declares none; else its own, each taking the leader's value of the same name, or its default."""
    leader = dict(leader or {})
    if not declared:
        return leader
    return resolve(declared, {k: v for k, v in leader.items() if k in declared}, event=event, date=date)


def env_of(params: Mapping[str, str] | None) -> dict[str, str]:
    """EVMAN_PARAM_<NAME> for each parameter (the name in upper case)."""
    return {ENV_PREFIX + name.upper(): value for name, value in (params or {}).items()}


def to_json(params: Mapping[str, str] | None) -> str | None:
    """The runs.params column: a JSON object, or NULL for a run with none."""
    return json.dumps(dict(params), ensure_ascii=False, sort_keys=True) if params else None


def from_json(text: str | None) -> dict[str, str]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
