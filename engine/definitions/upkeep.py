"""What keeps evman healthy for a year: `keep` (retention, in [defaults] and on an event) and
[defaults] `heartbeat` (a dead-man's-switch URL)."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from evman.engine.definitions.table import Table, describe
from evman.engine.quoting import quoted

EVENT_KEEP_KEYS: Final = ("runs", "logs")
DEFAULTS_KEEP_KEYS: Final = ("runs", "logs", "requests", "alerts")
HEARTBEAT_KEYS: Final = ("url", "every")
LEAST_KEEP_S: Final = 3600.0
"""A horizon shorter than an hour would delete what an operator is still looking at."""
LEAST_HEARTBEAT_S: Final = 5.0


def read_event_keep(table: Table) -> dict[str, Any]:
    """keep = { runs = "90d", logs = "30d" } on an event: the fields it sets (None: the defaults')."""
    return {f"keep_{key}_s": value for key, value in _read_keep(table, EVENT_KEEP_KEYS).items()}


def read_defaults_upkeep(table: Table) -> dict[str, Any]:
    """[defaults] keep = { runs, logs, requests, alerts } and heartbeat = "URL" | { url, every }."""
    values: dict[str, Any] = {f"keep_{key}_s": value for key, value in _read_keep(table, DEFAULTS_KEEP_KEYS).items()}
    values.update(_read_heartbeat(table))
    return values


def _read_keep(table: Table, keys: tuple[str, ...]) -> dict[str, float]:
    keep = table.sub("keep", keys)
    if keep is None:
        return {}
    found: dict[str, float] = {}
    for key in keys:
        seconds = keep.duration(key, positive=True)
        if seconds is not None and seconds < LEAST_KEEP_S:
            keep.error(key, f"is {keep.data[key]!s}; expected at least 1h (retention deletes what is older than this)")
        elif seconds is not None:
            found[key] = seconds
    return found


def _read_heartbeat(table: Table) -> dict[str, Any]:
    raw = table.data.get("heartbeat") if isinstance(table.data, dict) else None
    if raw is None:
        return {}
    if isinstance(raw, str):
        url, every = _heartbeat_url(table, "heartbeat", raw), None
    elif not isinstance(raw, dict):
        table.error("heartbeat", f'got {describe(raw)}; expected a URL or a table {{ url = "...", every = "1m" }}')
        return {}
    else:
        sub = table.sub("heartbeat", HEARTBEAT_KEYS)
        if sub is None:
            return {}
        text = sub.string("url", blank_ok=False)
        if text is None and "url" not in sub.data:
            sub.error("url", 'missing; expected the URL to ping, e.g. "https://hc-ping.com/<uuid>"')
        url = None if text is None else _heartbeat_url(sub, "url", text)
        every = sub.duration("every", positive=True)
        if every is not None and every < LEAST_HEARTBEAT_S:
            sub.error("every", f"is {every:g}s; expected at least {LEAST_HEARTBEAT_S:g}s")
            every = None
    out: dict[str, Any] = {}
    if url is not None:
        out["heartbeat_url"] = url
    if every is not None:
        out["heartbeat_every_s"] = every
    return out


def _heartbeat_url(table: Table, key: str, text: str) -> str | None:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        table.error(key, f'{quoted(text)} is not an http(s) URL; expected e.g. "https://hc-ping.com/<uuid>"')
        return None
    return text.strip()
