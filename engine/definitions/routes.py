"""The [routes] table: alert routes, their quiet hours and escalation."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from evman.engine.definitions.masking import is_apprise_url
from evman.engine.definitions.problems import Problems
from evman.engine.definitions.table import EXPECT_TIME_OF_DAY, Table, describe, without_none
from evman.engine.model import AlertKind, Route
from evman.engine.quoting import clipped, quoted

ROUTE_KEYS: Final = ("urls", "config", "tags", "quiet", "escalate_to", "escalate_after")
QUIET_KEYS: Final = ("from", "to", "except")


def read_route_names(raw: object, problems: Problems) -> frozenset[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("[routes]", f"got {describe(raw)}; expected a table of route names to Apprise URLs", ("routes",))
        return frozenset()
    return frozenset(raw)


def read_routes(raw: object, problems: Problems, base_dir: Path) -> dict[str, Route]:
    if not isinstance(raw, dict):
        return {}
    routes = {}
    for name, value in raw.items():
        route = _read_route(name, value, problems, base_dir, frozenset(raw))
        if route is not None:
            routes[name] = route
    _check_escalation_loops(routes, problems)
    return routes


def _read_route(name: str, value: object, problems: Problems, base_dir: Path, names: frozenset[str]) -> Route | None:
    where = f"[routes] {quoted(name)}"
    if isinstance(value, list):
        value = {"urls": value}
    if not isinstance(value, dict):
        problems.add(
            where,
            f"got {describe(value)}; expected an array of Apprise URLs or a table with urls = [...]",
            ("routes", name),
        )
        return None
    before = len(problems.lines)
    table = Table(value, problems, where, at=("routes", name))
    table.check_keys(ROUTE_KEYS)
    fields_ = {
        "name": name,
        "urls": _read_urls(table),
        "config": _read_config(table, base_dir),
        "tags": table.strings("tags"),
        **_read_quiet(table),
        **_read_escalation(table, name, names),
    }
    if "urls" not in value and "config" not in value:
        table.error("urls", "missing; expected at least one Apprise URL (or a config file)")
    elif value.get("urls") == [] and "config" not in value:
        table.error("urls", "is empty; expected at least one Apprise URL (or a config file)")
    return Route(**without_none(fields_)) if len(problems.lines) == before else None


def _read_urls(table: Table) -> tuple[str, ...] | None:
    urls = table.strings("urls")
    if urls is None:
        return None
    for number, url in enumerate(urls, start=1):
        if not is_apprise_url(url):
            shown = url.split("://", 1)[0] + "://..." if "://" in url else "(no scheme://)"
            table.error(
                "urls",
                f"Apprise cannot use URL {number} of {len(urls)}, {shown}; expected a URL "
                "Apprise knows, see https://github.com/caronc/apprise/wiki",
            )
    return urls


def _read_config(table: Table, base_dir: Path) -> str | None:
    value = table.string("config", blank_ok=False)
    if value is None or "://" in value:
        return value
    try:
        path = base_dir / Path(value).expanduser()
    except RuntimeError:  # "~someone" for a user this machine does not have
        table.error("config", f"{quoted(value)}: no such user's home; expected a path, or ~ for your own home")
        return None
    if not path.is_file():
        table.error(
            "config", f"no such file {quoted(value)} (looked for {quoted(str(path))}); expected an Apprise config file"
        )
        return None
    return os.path.normpath(path)


def _read_quiet(table: Table) -> dict[str, Any]:
    quiet = table.sub("quiet", QUIET_KEYS)
    if quiet is None:
        return {}
    start, end = quiet.time_of_day("from"), quiet.time_of_day("to")
    for key in ("from", "to"):
        if key not in quiet.data:
            quiet.error(key, f"missing; expected {EXPECT_TIME_OF_DAY} (quiet needs both from and to)")
    kinds = quiet.strings("except")
    allowed = [kind.value for kind in AlertKind]
    for kind in kinds or ():
        if kind not in allowed:
            quiet.error("except", f"unknown alert kind {quoted(kind)}; expected some of: " + ", ".join(allowed))
    return {"quiet_from": start, "quiet_to": end, "quiet_except": kinds}


def _read_escalation(table: Table, name: str, names: frozenset[str]) -> dict[str, Any]:
    target = table.string("escalate_to", blank_ok=False)
    after = table.duration("escalate_after")
    if target is not None and target == name:
        table.error(
            "escalate_to", f"names this route itself; expected another route, one of: {listing(names - {name})}"
        )
    elif target is not None:
        check_route(table, "escalate_to", target, names)
    if "escalate_after" in table.data and "escalate_to" not in table.data:
        table.error("escalate_after", "given without escalate_to; expected both, or neither")
    return {"escalate_to": target, "escalate_after_s": after}


def _check_escalation_loops(routes: Mapping[str, Route], problems: Problems) -> None:
    reported: set[frozenset[str]] = set()
    for start in sorted(routes):
        chain = [start]
        target = routes[start].escalate_to
        while target is not None and target in routes and target not in chain:
            chain.append(target)
            target = routes[target].escalate_to
        if target == start and frozenset(chain) not in reported and len(chain) > 1:
            reported.add(frozenset(chain))
            loop = " -> ".join(clipped(name) for name in [*chain, start])
            problems.add(
                f"[routes] {quoted(start)}",
                f"key 'escalate_to': escalation loop {loop}; expected a chain that ends",
                ("routes", start, "escalate_to"),
            )


def check_route(table: Table, key: str, name: str, route_names: frozenset[str] | None) -> None:
    if route_names is None or name in route_names:
        return
    close = difflib.get_close_matches(name, sorted(route_names), n=1)
    hint = f"did you mean {quoted(close[0])}?" if close else f"expected one of: {listing(route_names)}"
    table.error(key, f"no route {quoted(name)} in [routes]; {hint}")


def listing(names: Iterable[str], most: int = 10) -> str:
    """Route names for a message: each cut to its first 80 characters, at most `most` of them."""
    ordered = sorted(names)
    shown = ", ".join(clipped(name) for name in ordered[:most])
    more = f" and {len(ordered) - most} more" if len(ordered) > most else ""
    return shown + more or "(none defined)"
