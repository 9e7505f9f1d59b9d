"""`evman engines --check [--max-age 30s]`: exit 0 when a live engine beats, 1 when none does, 2
when one does but a run is stuck; one line for Nagios, a cron line on another host, or a probe.

Stuck: a run the engine should have moved on and has not, by more than --max-age: waiting past
its window's latest end (it should be `missed`), running past its `timeout` or its kill-enforced
`runtime.max` (it should have been killed), or running with no process recorded."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from evman.engine.clock import parse_iso
from evman.engine.running.procs import pid_alive

HEALTHY: Final = 0
NO_ENGINE: Final = 1
STUCK: Final = 2


@dataclass(frozen=True)
class Checked:
    code: int
    message: str
    live: int
    stuck: list[str]

    def as_json(self) -> dict[str, Any]:
        state = {HEALTHY: "ok", NO_ENGINE: "no_live_engine", STUCK: "stuck"}[self.code]
        return {"status": state, "exit": self.code, "message": self.message, "live": self.live, "stuck": self.stuck}


def check(store: Any, now: datetime, max_age_s: float) -> Checked:
    live, newest = live_engines(store, now, max_age_s)
    if not live:
        when = "never" if newest is None else f"{(now - newest).total_seconds():.0f} s ago"
        return Checked(NO_ENGINE, f"CRITICAL: no live engine on {store.url} (last heartbeat {when})", 0, [])
    stuck = stuck_runs(store.active_run_facts(), now, max_age_s)
    if stuck:
        shown = "; ".join(stuck[:5]) + (f"; and {len(stuck) - 5} more" if len(stuck) > 5 else "")
        return Checked(STUCK, f"WARNING: {len(stuck)} run(s) stuck: {shown}", live, stuck)
    return Checked(HEALTHY, f"OK: {live} live engine(s) on {store.url}, heartbeat {_ago(now, newest)}", live, [])


def live_engines(store: Any, now: datetime, max_age_s: float) -> tuple[int, datetime | None]:
    """(engines whose heartbeat is younger than max_age_s, the newest heartbeat)."""
    live, newest = 0, None
    for row in store.engines():
        beat = parse_iso(row.get("heartbeat_at"))
        if beat is None:
            continue
        newest = beat if newest is None or beat > newest else newest
        gone = row.get("host") == socket.gethostname() and row.get("pid") and not pid_alive(int(row["pid"]))
        if row.get("state") == "live" and not gone and (now - beat).total_seconds() <= max_age_s:
            live += 1
    return live, newest


def stuck_runs(rows: list[dict[str, Any]], now: datetime, max_age_s: float) -> list[str]:
    late = timedelta(seconds=max_age_s)
    out = []
    for row in rows:
        why = _why_stuck(row, now, late)
        if why is not None:
            out.append(f"run:{row['id']} ({row['event']}) {why}")
    return out


def _why_stuck(row: dict[str, Any], now: datetime, late: timedelta) -> str | None:
    if row["state"] == "waiting":
        due = parse_iso(row.get("due_by"))
        return f"waiting {_for(now - due)} past its window" if due is not None and now - due > late else None
    started = parse_iso(row.get("started_at"))
    if started is None:
        return None
    if not row.get("pid") and now - started > late:
        return f"running {_for(now - started)} with no process recorded"
    limit = _kill_limit_s(row.get("spec"))
    over = now - started - timedelta(seconds=limit) if limit is not None else None
    return f"running {_for(over)} past its limit" if over is not None and over > late else None


def _kill_limit_s(spec_text: str | None) -> float | None:
    """The event's timeout, or its runtime.max when runtime.kill is set (what the engine kills at)."""
    try:
        spec = json.loads(spec_text or "{}")
    except ValueError:
        return None
    runtime = spec.get("runtime") or {}
    limits = [spec.get("timeout_s"), runtime.get("max_s") if runtime.get("kill") else None]
    found = [float(v) for v in limits if isinstance(v, int | float)]
    return min(found) if found else None


def _for(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _ago(now: datetime, at: datetime | None) -> str:
    return "never" if at is None else f"{max(0.0, (now - at).total_seconds()):.0f} s ago"
