"""Crontab lines: what kind each is, its blank-separated tokens, variables, and cron's '%'."""

from __future__ import annotations

import re
from typing import Final

ENV_RE: Final = re.compile(r"""\s*(?P<name>"[^"]*"|'[^']*'|[^\s=]+)\s*=(?P<value>.*)""")
TOKEN_RE: Final = re.compile(r"[^ \t]+")


def line_kind(line: str) -> str:
    stripped = line.strip(" \t")
    if not stripped:
        return "blank"
    if stripped.startswith("#"):
        return "comment"
    return "env" if ENV_RE.fullmatch(line) else "entry"


def env_name(line: str) -> str:
    match = ENV_RE.fullmatch(line)
    assert match is not None
    return unquoted(match["name"]) or match["name"]


def unquoted(value: str) -> str | None:
    """A value with one pair of matching quotes removed; None if a quote is left open."""
    if value and value[0] in "\"'":
        return value[1:-1] if len(value) >= 2 and value[-1] == value[0] else None
    return value


def take(line: str, count: int) -> tuple[list[str], str]:
    """Up to `count` blank-separated tokens, and the rest after the blanks that follow."""
    tokens: list[str] = []
    pos = 0
    for _ in range(count):
        match = TOKEN_RE.search(line, pos)
        if match is None:
            break
        tokens.append(match.group())
        pos = match.end()
    return tokens, line[pos:].lstrip(" \t")


def split_percent(rest: str) -> tuple[str, str | None]:
    """cron's '%': command before the first unescaped one (with '\\%' -> '%'), stdin after."""
    command: list[str] = []
    escaped = False
    for index, ch in enumerate(rest):
        if escaped:
            escaped = False
            if ch == "%":
                command[-1] = "%"
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return "".join(command), _stdin(rest[index + 1 :])
        command.append(ch)
    return "".join(command), None


def _stdin(data: str) -> str:
    """As cron feeds it: '%' -> newline, '\\%' -> '%', other backslashes kept, no newline added."""
    out: list[str] = []
    escaped = False
    for ch in data:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)
