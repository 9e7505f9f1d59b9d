"""Asking the engine for something: a row in the `requests` mailbox, then its outcome."""

from __future__ import annotations

import os
import re
import socket
import time
from datetime import UTC, datetime
from typing import Any

from evman.engine.clock import parse_iso
from evman.engine.running.procs import pid_alive
from evman.engine.store import Store, is_pg_store

LIVE_AFTER_S = 30.0
_ASKED = re.compile(r"asked in request (\d+)")
"""How an engine's answer names a follow-on request it queued for another engine (several engines)."""


def operator() -> str:
    """Who is asking: $EVMAN_OPERATOR, else the login name (a request row's `requested_by`)."""
    try:
        import getpass

        return os.environ.get("EVMAN_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def engine_is_live(store: Store, now: datetime | None = None) -> bool:
    if is_pg_store(store):  # PostgreSQL: any engine whose lease is current
        return bool(store.live_engine_count())
    row = store.engine_row()
    if row is None or row.stopped_at is not None or row.heartbeat_at is None:
        return False
    if row.host == socket.gethostname() and row.pid is not None and not pid_alive(int(row.pid)):
        return False  # its process is gone: whoever starts an engine now takes over at once
    beat = parse_iso(row.heartbeat_at)
    now = now or datetime.now(UTC)
    return beat is not None and (now - beat).total_seconds() < LIVE_AFTER_S


def send_request(
    store: Store, verb: str, target: str, *, args: dict[str, Any] | None = None, requested_by: str, wait_s: float = 5.0
) -> tuple[bool, str]:
    """Queue a request and wait up to wait_s for the engine's outcome: (ok, message)."""
    request_id = store.add_request(verb, target, args=args, requested_by=requested_by)
    if not engine_is_live(store):
        return True, (
            f"queued as request {request_id}; no engine is running on {store.url}, "
            f"it will act when one starts (evman --no-ui --db {store.url})."
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        row = store.request(request_id)
        if row and row["handled_at"]:
            if row["outcome"] == "ok":
                detail = _with_follow_ons(store, row["detail"], deadline)
                return True, f"{verb} {target}: ok" + (f" ({detail})" if detail else "")
            return False, f"{verb} {target}: {row['outcome']}"
        time.sleep(0.05)
    return True, f"queued as request {request_id}; the engine has not answered within {wait_s:g} s."


def _with_follow_ons(store: Store, detail: str | None, deadline: float) -> str | None:
    """The answer with the outcome of each follow-on request it names (`kill E` with runs on
    several engines: each owner answers for its own), waited for until `deadline`."""
    asked = [int(i) for i in _ASKED.findall(detail or "")]
    answers: dict[int, str] = {}
    while asked and len(answers) < len(asked) and time.monotonic() < deadline:
        for row in store.pending_requests([i for i in asked if i not in answers]):
            answers[int(row["id"])] = str(row["outcome"]) + (f", {row['detail']}" if row["detail"] else "")
        if len(answers) < len(asked):
            time.sleep(0.05)
    return (
        _ASKED.sub(lambda m: f"{m.group(0)}: {answers.get(int(m.group(1)), 'not answered yet')}", detail)
        if asked and detail
        else detail
    )
