"""Sending through Apprise: a route's targets, one message to one target, and secrets kept
out of every text and log line. The only module that imports apprise."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import unquote

from evman.engine.definitions import MASK, mask_url
from evman.engine.model import Route
from evman.engine.paging.rules import Target

EMAIL_SCHEMES: Final = frozenset({"mailto", "mailtos"})


def masked(url: str) -> str:
    """`url` as it may be shown or logged: credentials and tokens replaced by ****."""
    return mask_url(url)


def build_targets(route: Route) -> list[Target]:
    """Fresh Apprise services for the route: one per URL, plus the config file's entries
    (only those with one of the route's tags, when it names tags)."""
    import apprise

    targets = []
    for url in route.urls:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ValueError(f"Apprise cannot use {masked(url)}")
        targets.append(_target(route.name, masked(url), plugin))
    if route.config is not None:
        config = apprise.AppriseConfig()
        config.add(route.config)
        bundle = apprise.Apprise()
        bundle.add(config)
        found: Iterable[Any] = bundle.find(tag=list(route.tags) if route.tags else apprise.common.MATCH_ALL_TAG)
        for plugin in found:
            targets.append(_target(route.name, str(plugin.url(privacy=True)).partition("?")[0], plugin))
    return _unique_labels(targets)


def _target(route: str, label: str, plugin: Any) -> Target:
    scheme = label.partition("://")[0].lower()
    return Target(route, label, plugin, scheme in EMAIL_SCHEMES, secrets_of(plugin))


def _unique_labels(targets: list[Target]) -> list[Target]:
    seen: dict[str, int] = {}
    for target in targets:
        seen[target.label] = seen.get(target.label, 0) + 1
        if seen[target.label] > 1:
            target.label = f"{target.label} #{seen[target.label]}"
    return targets


_TOKEN: Final = re.compile(r"[^/:@?&=#,;]+")


def secrets_of(plugin: Any) -> tuple[str, ...]:
    """The parts of the plugin's URL that its privacy form hides (passwords, tokens, keys)."""
    full, private = str(plugin.url()), str(plugin.url(privacy=True))
    shown = {unquote(t) for t in _TOKEN.findall(private)}
    hidden = {unquote(t) for t in _TOKEN.findall(full)} - shown
    password = getattr(plugin, "password", None)
    if password:
        hidden.add(str(password))
    return tuple(sorted((s for s in hidden if len(s) >= 3 and s != MASK), key=len, reverse=True))


def send_message(
    target: Target, title: str, body: str, notify_type: str, timeout_s: float, *, throttle_s: float | None = None
) -> tuple[bool, str | None]:
    """Send one message to one target: (delivered, why not). Never raises."""
    import apprise

    plugin = target.plugin
    for attribute in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(plugin, attribute):
            setattr(plugin, attribute, timeout_s)
    if throttle_s is not None:
        plugin.request_rate_per_sec = throttle_s
    bundle = apprise.Apprise()
    bundle.add(plugin)
    try:
        result = bundle.notify(
            body=body, title=title, notify_type=apprise.NotifyType(notify_type), body_format=apprise.NotifyFormat.TEXT
        )
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if result:
        return True, None
    return False, _errors_of(result) or "Apprise reported a failure (details in the log)"


def _errors_of(result: Any) -> str:
    """Warnings Apprise captured for this call (Apprise 2 results carry them; older bools don't)."""
    logs = getattr(result, "logs", None)
    if not callable(logs):
        return ""
    messages = [
        str(entry.message) for entry in logs() if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL")
    ]
    return "; ".join(dict.fromkeys(messages))


class SecretScrubber(logging.Filter):
    """Replaces known secrets with **** in text and in log records of the logger it is
    installed on. Secrets are every hidden part of every target this process has built."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(secrets)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True

    def install(self, logger: str = "apprise") -> SecretScrubber:
        """Filter `logger`'s records (once; a logger keeps one copy of a filter)."""
        logging.getLogger(logger).addFilter(self)
        return self


SCRUBBER: Final = SecretScrubber()
"""One per process: Apprise logs through one logger, whichever notifier sends."""
