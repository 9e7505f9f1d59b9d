"""What an event does: exactly one of run, shell, call and http."""

from __future__ import annotations

import re
import shlex
from typing import Any, Final
from urllib.parse import urlsplit

from evman.engine.definitions.table import NUL_PROBLEM, Table, describe, without_none
from evman.engine.model import HttpCall

ACTION_KEYS: Final = ("run", "shell", "call", "http")
HTTP_KEYS: Final = ("url", "method", "expect", "body", "headers", "timeout")
CALL_PATTERN: Final = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def read_action(table: Table) -> dict[str, Any]:
    given = [key for key in ACTION_KEYS if key in table.data]
    if not given:
        table.error("run", "missing; expected exactly one of run, shell, call or http to say what the event does")
    for extra in given[1:]:
        table.error(extra, f"given together with '{given[0]}'; expected exactly one of run, shell, call or http")
    return {
        "run": _read_run(table),
        "shell": table.string("shell", blank_ok=False),
        "call": _read_call(table),
        "http": _read_http(table),
    }


def _read_run(table: Table) -> tuple[str, ...] | None:
    value = table.get("run", (str, list), "a command line string or an array of strings")
    if isinstance(value, list):
        return table.strings("run") if value else _empty_run(table)
    if value is None:
        return None
    if "\0" in value:
        table.error("run", NUL_PROBLEM)
        return None
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        table.error(
            "run",
            f"cannot split it into arguments ({exc}); expected balanced quotes, or use shell = ... for shell syntax",
        )
        return None
    return tuple(argv) if argv else _empty_run(table)


def _empty_run(table: Table) -> tuple[str, ...] | None:
    table.error("run", "is empty; expected a program and its arguments")
    return None


def _read_call(table: Table) -> str | None:
    value = table.string("call")
    if value is not None and CALL_PATTERN.fullmatch(value.strip()) is None:
        table.error("call", f'got {describe(value)}; expected "package.module:function"')
        return None
    return None if value is None else value.strip()


def _read_http(table: Table) -> HttpCall | None:
    http = table.sub("http", HTTP_KEYS)
    if http is None:
        return None
    url = http.string("url")
    if "url" not in http.data:
        http.error("url", 'missing; expected a URL such as "https://example.com/hook"')
    elif url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        http.error("url", f"got {describe(url)}; expected an http:// or https:// URL with a host")
    method = http.string("method")
    if method is not None and method.upper() not in HTTP_METHODS:
        http.error("method", f"got {describe(method)}; expected one of: {', '.join(HTTP_METHODS)}")
    expect = http.integer("expect", minimum=100)
    if expect is not None and expect > 599:
        http.error("expect", f"is {expect}; expected an HTTP status code, 100 to 599")
    return HttpCall(
        **without_none(
            {
                "url": url or "",
                "method": None if method is None else method.upper(),
                "expect": expect,
                "body": http.string("body"),
                "headers": read_string_table(http, "headers"),
                "timeout_s": http.duration("timeout", positive=True),
            }
        )
    )


def read_string_table(table: Table, key: str) -> dict[str, str] | None:
    """A table of strings; numbers become their text (env = { PORT = 8080 })."""
    raw = table.get(key, (dict,), 'a table of strings such as { NAME = "value" }')
    if raw is None:
        return None
    result = {}
    for name, value in raw.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            table.error(f"{key}.{name}", f"got {describe(value)}; expected a string")
        elif not name or "=" in name or "\0" in name + value:
            table.error(f"{key}.{name}", "is not a usable name or value; expected no '=' in the name and no NUL")
        else:
            result[name] = value
    return result
