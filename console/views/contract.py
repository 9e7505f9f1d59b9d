"""What the CLI shows: rows from the store shaped as the JSON contract, and as text (the
console's own rows and cells are console/views/screen_rows.py)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

from evman.engine.quoting import quoted
from evman.engine.store import Store
from evman.engine.vocabulary import RunState

RUN_KEYS = (
    "id",
    "event",
    "state",
    "trigger",
    "attempt",
    "scheduled_for",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "output_tail",
)
RUN_EXTRA = (
    "triggered_by",
    "repeats_run_id",
    "waiting_reason",
    "flags",
    "log_path",
    "due_by",
    "late_at",
    "pid",
    "pools",
    "log_pruned_at",
)
"""log_pruned_at: when retention deleted the run's log file (keep.logs); output_tail stays."""


class Look(NamedTuple):
    """How a state reads on screen."""

    symbol: str
    tone: str
    """"ok", "bad", "warn", "active", "wait" or "muted" (console/widgets/tones.py)."""


SHOWN_STATES: Final[Mapping[str, Look]] = {
    RunState.RUNNING: Look("▶", "active"),
    RunState.WAITING: Look("◷", "wait"),
    RunState.FAILED: Look("✘", "bad"),
    RunState.KILLED: Look("☠", "bad"),
    RunState.LOST: Look("?", "bad"),
    RunState.MISSED: Look("⊘", "bad"),
    "held": Look("‖", "warn"),
    RunState.SUCCEEDED: Look("✔", "ok"),
    RunState.SKIPPED: Look("↷", "muted"),
    "idle": Look("·", "muted"),
}
"""Every state a run or an event is shown in (each RunState, and an event's "held" and
"idle"), in the order the console's header counts them: its symbol and its tone."""
STATE_SYMBOLS: Final = {state: look.symbol for state, look in SHOWN_STATES.items()}


def duration_s(row: dict[str, Any]) -> float | None:
    start, end = row.get("started_at"), row.get("ended_at")
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def run_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in RUN_KEYS}
    out["duration_s"] = duration_s(row)
    for key in RUN_EXTRA:
        out[key] = row.get(key)
    out["checks"] = json.loads(row["checks"]) if row.get("checks") else []
    out["params"] = json.loads(row["params"]) if row.get("params") else {}
    out["approval"] = json.loads(row["approval"]) if row.get("approval") else None
    return out


def event_state(row: dict[str, Any]) -> str:
    return str(row.get("run_state") or "idle")


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    last = None
    if row.get("run_id"):
        last = {
            "id": row["run_id"],
            "state": row["run_state"],
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "exit_code": row["exit_code"],
        }
    return {
        "name": row["name"],
        "state": event_state(row),
        "schedule": row["schedule"],
        "next_fire_at": row["next_fire_at"],
        "held": bool(row["held"]),
        "kind": row["kind"],
        "driver": row["driver"],
        "timezone": row["timezone"],
        "requires": row["requires"],
        "open_alerts": row.get("open_alerts", 0),
        "last_run": last,
        "group": row.get("group_name"),
    }


def event_list(store: Store, *, name_like: str | None = None) -> list[dict[str, Any]]:
    return [event_json(r) for r in store.list_events(name_like=name_like)]


def unknown_event(store: Store, name: str) -> str:
    close = difflib.get_close_matches(name, sorted(store.event_names()), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else " `evman list` shows the defined events."
    return f"unknown event {quoted(name)} in {store.url}.{hint}"


def event_detail(store: Store, name: str) -> dict[str, Any] | None:
    from evman.engine.definitions import spec_from_json

    rows = store.list_events(name=name, include_pruned=True)
    if not rows:
        return None
    row = rows[0]
    spec = spec_from_json(row["spec"])
    runs = store.runs_of(name, limit=10)
    waiting = next((r for r in runs if r["state"] == RunState.WAITING), None)
    data = event_json(row)
    data.update(
        waiting_reason=(waiting or {}).get("waiting_reason"),
        window={"earliest": spec.window.earliest, "latest": spec.window.latest, "late_after": spec.late_after},
        runtime={"min_s": spec.runtime.min_s, "max_s": spec.runtime.max_s, "kill": spec.runtime.kill},
        stats=store.duration_stats(name),
        runs=[run_json(r) for r in runs],
        on_success=list(spec.on_success),
        on_failure={
            "retries": spec.on_failure.retries,
            "backoff_s": spec.on_failure.backoff_s,
            "prepare": spec.on_failure.prepare,
            "trigger": list(spec.on_failure.trigger),
        },
        outputs=[o.path for o in spec.outputs],
        command=_command_text(spec),
        held_by=(store.event_row(name) or {}).get("held_by"),
        defined=bool(row.get("defined", 1)),
        **_coordination(spec),
    )
    return data


def _coordination(spec: Any) -> dict[str, Any]:
    """`show`'s keys for pools, priority, approval and declared run parameters."""
    approval = spec.approval
    return {
        "uses": dict(spec.uses),
        "priority": spec.priority,
        "approval": None
        if approval is None
        else {"route": approval.route, "timeout_s": approval.timeout_s, "on_timeout": approval.on_timeout.value},
        "params": {
            name: {"default": p.default, "required": p.required, "choices": list(p.choices), "pattern": p.pattern}
            for name, p in spec.params.items()
        },
    }


def _command_text(spec: Any) -> str:
    if spec.run is not None:
        import shlex

        return shlex.join(spec.run)
    if spec.shell is not None:
        return f"sh -c {spec.shell!r}"
    if spec.call is not None:
        return f"call {spec.call}"
    from evman.engine.definitions import mask_password

    return f"{spec.http.method} {mask_password(spec.http.url)}"


def run_list(store: Store, event: str | None, limit: int) -> list[dict[str, Any]]:
    return [run_json(r) for r in store.runs_of(event, limit=limit)]


def alert_list(store: Store, *, event: str | None, open_only: bool, limit: int) -> list[dict[str, Any]]:
    rows = store.alerts(event=event, open_only=open_only, limit=limit)
    deliveries = store.deliveries_of([int(r["id"]) for r in rows])
    out = []
    for r in rows:
        attempts = deliveries.get(int(r["id"]), [])
        out.append(
            {
                "id": r["id"],
                "kind": r["kind"],
                "event": r["event"],
                "run_id": r["run_id"],
                "created_at": r["created_at"],
                "deliveries": [
                    {
                        "attempted_at": d["attempted_at"],
                        "route": d["route"],
                        "target": d["target"],
                        "outcome": d["outcome"],
                        "error": d["error"],
                    }
                    for d in attempts
                ],
                "acknowledged_by": r["acknowledged_by"],
                "acknowledged_at": r["acknowledged_at"],
                "status": r["status"],
                "count": r["count"],
                "message": r["message"],
                "route": r["route"],
                "delivered_at": r["delivered_at"],
                "outcome": _delivery_outcome(r, attempts),
            }
        )
    return out


NO_ROUTE = "no route"


def _delivery_outcome(alert: dict[str, Any], attempts: list[dict[str, Any]]) -> str:
    """delivered, no route (nothing to send to: not a delivery failure), failing (N attempt(s)),
    pending or not sent."""
    if alert["delivered_at"]:
        return "delivered"
    if attempts and all((a["error"] or "").startswith(NO_ROUTE) for a in attempts):
        return NO_ROUTE
    if attempts:
        return f"failing ({len(attempts)} attempt(s))"
    return "pending" if alert["pending"] else "not sent"


def export_text(store: Store, *, include_secrets: bool) -> str:
    from evman.engine.definitions import export_toml, spec_from_json
    from evman.engine.model import Defaults, Definitions, Route

    defaults = Defaults(**json.loads(store.defaults_json() or "{}"))
    routes = {}
    for name, text in store.routes_json().items():
        data = json.loads(text)
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        routes[name] = Route(**values)
    specs = tuple(spec_from_json(r["spec"]) for r in store.list_events())
    definitions = Definitions(defaults, routes, specs, store.url, pools=store.pool_sizes())
    return export_toml(definitions, include_secrets=include_secrets)


# -- text rendering ------------------------------------------------------------------------------


def short_time(stamp: str | None) -> str:
    if not stamp:
        return "-"
    at = datetime.fromisoformat(stamp).astimezone()
    return at.strftime("%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "  ".join(headers) + "\n(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def render_event_list(rows: list[dict[str, Any]]) -> str:
    table = []
    for r in rows:
        last = r["last_run"] or {}
        state = r["state"] + (" (held)" if r["held"] else "")
        table.append(
            [
                r["name"],
                f"{STATE_SYMBOLS.get(r['state'], ' ')} {state}",
                r["schedule"] or "-",
                short_time(r["next_fire_at"]),
                short_time(last.get("ended_at") or last.get("started_at")),
                str(r["open_alerts"] or ""),
            ]
        )
    return _table(["EVENT", "STATE", "SCHEDULE", "NEXT", "LAST", "ALERTS"], table)


def render_run_list(rows: list[dict[str, Any]]) -> str:
    table = []
    for r in rows:
        took = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        why = r["reason"] or r["waiting_reason"] or ""
        table.append(
            [
                str(r["id"]),
                r["event"],
                r["state"],
                r["trigger"],
                str(r["attempt"]),
                short_time(r["started_at"] or r["scheduled_for"]),
                took,
                "-" if r["exit_code"] is None else str(r["exit_code"]),
                why[:60],
            ]
        )
    return _table(["RUN", "EVENT", "STATE", "TRIGGER", "TRY", "STARTED", "TOOK", "EXIT", "REASON"], table)


def render_alert_list(rows: list[dict[str, Any]]) -> str:
    table = []
    for r in rows:
        ack = r["acknowledged_by"] or ("-" if r["status"] == "open" else r["status"])
        table.append(
            [
                f"alert:{r['id']}",
                r["kind"],
                r["event"],
                short_time(r["created_at"]),
                str(r["count"]),
                r["outcome"],
                ack,
                (r["message"] or "")[:60],
            ]
        )
    return _table(["ALERT", "KIND", "EVENT", "CREATED", "COUNT", "DELIVERY", "ACK", "MESSAGE"], table)


def render_event_detail(d: dict[str, Any]) -> str:
    from evman.engine.timing.durations import format_duration

    def dur(v: float | None) -> str:
        return "-" if v is None else format_duration(v)

    s = d["stats"]
    lines = [
        f"{d['name']}: {d['state']}" + (f" (held by {d['held_by']})" if d["held"] else ""),
        f"  command    {d['command']}",
        f"  schedule   {d['schedule'] or '-'} ({d['timezone']}), next {short_time(d['next_fire_at'])}",
        f"  requires   {d['requires'] or '-'}",
        f"  window     earliest {d['window']['earliest'] or '-'}, latest {d['window']['latest'] or '-'}, "
        f"late after {d['window']['late_after'] or '-'}",
        f"  runtime    min {dur(d['runtime']['min_s'])}, max {dur(d['runtime']['max_s'])}"
        + (" (kill)" if d["runtime"]["kill"] else ""),
        f"  observed   {s['count']} successful run(s): p50 {dur(s['p50_s'])}, p90 {dur(s['p90_s'])}, "
        f"max {dur(s['max_s'])}",
        f"  on success {', '.join(d['on_success']) or '-'}",
        f"  on failure retries {d['on_failure']['retries']}, prepare {d['on_failure']['prepare'] or '-'}, "
        f"trigger {', '.join(d['on_failure']['trigger']) or '-'}",
    ]
    if d["waiting_reason"]:
        lines.append(f"  waiting    {d['waiting_reason']}")
    pruned = [str(r["id"]) for r in d["runs"] if r.get("log_pruned_at")]
    if pruned:
        lines.append(
            f"  logs       pruned (keep.logs) for run(s) {', '.join(pruned)}; their stored output "
            "tails remain (evman history E --json: output_tail)"
        )
    lines += ["", render_run_list(d["runs"])]
    return "\n".join(lines)


# -- the console: rows for its tables and tree, display cells relative to a clock ----------------
# A cell is (text, tone); the console maps tones to theme colours. Times render relative to the
# `now` it is given, so a fixed clock gives a fixed screen.
