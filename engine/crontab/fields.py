"""The five time fields and the @ macros, checked as Debian cron reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from evman.engine.crontab.problems import LineProblem
from evman.engine.quoting import quoted

MACROS: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot"})
TIME_FIELD_RE: Final = re.compile(r"[0-9*?][0-9*?,/LW#-]*")


@dataclass(frozen=True)
class _FieldSpec:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_named: int = 0


_MINUTE: Final = _FieldSpec("minute", 0, 59)
_HOUR: Final = _FieldSpec("hour", 0, 23)
_DOM: Final = _FieldSpec("day of month", 1, 31)
_MONTH: Final = _FieldSpec(
    "month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)
_DOW: Final = _FieldSpec("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"), 0)
_FIELDS: Final = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)


def check_fields(fields: list[str]) -> None:
    for text, spec in zip(fields, _FIELDS, strict=False):
        if text == "?":
            raise LineProblem(f"{spec.label} '?' is Quartz syntax, not cron's; write '*'")
        for item in text.split(","):
            _check_item(item, text, spec)


def _check_item(item: str, text: str, spec: _FieldSpec) -> None:
    upper = item.upper()
    if not item:
        raise LineProblem(f"{spec.label} field {quoted(text)} has an empty list item")
    if spec is _DOM and upper in ("L", "LW"):
        return
    if spec is _DOM and re.fullmatch(r"[0-9]+W", upper):
        _value(upper[:-1], spec)
        return
    if spec is _DOW and (nth := re.fullmatch(r"(\w+)#(\w+)", item)):
        _value(nth[1], spec)
        if not re.fullmatch(r"[1-5]", nth[2]):
            raise LineProblem(f"day of week {quoted(item)}: the week number after '#' must be 1-5")
        return
    if spec is _DOW and re.fullmatch(r"[0-9]+L", upper):
        _value(upper[:-1], spec)
        return
    base, slash, step = item.partition("/")
    if slash and not (re.fullmatch(r"[0-9]+", step) and int(step) > 0):
        raise LineProblem(
            f"{spec.label} field {quoted(text)}: step {quoted(step)} must be a whole number of at least 1"
        )
    if base == "*":
        return
    low, dash, high = base.partition("-")
    if dash and _value(low, spec) > _value(high, spec):
        raise LineProblem(f"{spec.label} range {quoted(base)} runs backwards; write it as two ranges, e.g. 22-23,0-2")
    if not dash:
        _value(base, spec)


def _value(token: str, spec: _FieldSpec) -> int:
    if token.lower() in spec.names:
        return spec.names.index(token.lower()) + spec.first_named
    if not re.fullmatch(r"[0-9]+", token):
        names = f" or a name ({spec.names[0]}-{spec.names[-1]})" if spec.names else ""
        raise LineProblem(f"{spec.label} {quoted(token)} is not a number{names}")
    if not spec.low <= int(token) <= spec.high:
        raise LineProblem(f"{spec.label} {token} is out of range {spec.low}-{spec.high}")
    return int(token)


def has_valid_fields(fields: list[str]) -> bool:
    try:
        check_fields(fields)
    except LineProblem:
        return False
    return True
