"""Alert and HTTP URLs: whether Apprise can use them, and their secrets masked for showing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "****"


def is_apprise_url(url: str) -> bool:
    """Whether Apprise can build a notifier from `url` (it checks, it sends nothing)."""
    import apprise  # only here and in mask_url: loading its plugins takes most of a second

    with _apprise_quiet():
        return bool(apprise.Apprise().add(url))


def mask_url(url: str) -> str:
    """`url` with its secrets replaced by ****: Apprise's privacy form when Apprise knows the
    scheme (only the query keys the URL had), else with the password of user:password@ masked."""
    import apprise

    with _apprise_quiet():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return mask_password(url)
    private: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]
    base, _, query = private.partition("?")
    had = {part.partition("=")[0].lower() for part in url.partition("?")[2].split("&") if part}
    kept = [part for part in query.split("&") if part and part.partition("=")[0].lower() in had]
    return base + ("?" + "&".join(kept) if kept else "")


def mask_password(url: str) -> str:
    """`url` with the password of user:password@ masked, without Apprise: for the plain
    http(s) URLs of `http` events, wherever they are shown or logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


@contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Apprise logs each URL it rejects; validation reports them itself, so drop this
    thread's apprise records (other threads, such as the notifier, still log)."""
    logger = logging.getLogger("apprise")
    me = threading.get_ident()

    def is_other_thread(record: logging.LogRecord) -> bool:
        return record.thread != me

    logger.addFilter(is_other_thread)
    try:
        yield
    finally:
        logger.removeFilter(is_other_thread)


def mask_ping_url(url: str) -> str:
    """A heartbeat URL as shown and logged: scheme and host, its path and query (the check's
    secret, e.g. healthchecks.io's UUID) and any password masked."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, f"/{MASK}" if parts.path.strip("/") or parts.query else "", "", ""))
