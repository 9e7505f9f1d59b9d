"""Acting on rows of the `requests` mailbox: trigger, restart, kill, hold, release, ack."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from engine.clock import iso, parse_iso
from engine.model import RunState, Trigger

if TYPE_CHECKING:
    from engine.engine import ActiveRun, Engine

VERBS: Final = ("trigger", "restart", "kill", "hold", "release", "ack")
RESTARTABLE: Final = frozenset({"failed", "killed", "lost", "missed", "skipped"})


class RequestError(ValueError):
    pass


def handle_request(engine: Engine, req: dict[str, Any], now: datetime) -> tuple[str, str | None]:
    """Act on one request row; returns (outcome, detail): outcome is "ok" or an error text."""
    verb = str(req["verb"]).strip().lower()
    handler = _HANDLERS.get(verb)
    if handler is None:
        return f"unknown verb {verb!r}; expected one of {', '.join(VERBS)}", None
    try:
        args = json.loads(req["args"]) if req.get("args") else {}
        if not isinstance(args, dict):
            raise RequestError("args must be a JSON object")
        detail = handler(engine, str(req["target"]).strip(), args, _who(req), now)
    except RequestError as exc:
        return str(exc), None
    except (ValueError, TypeError) as exc:
        return f"bad request: {exc}", None
    return "ok", detail


def _who(req: dict[str, Any]) -> str:
    by = req.get("requested_by") or "someone"
    return f"{by} (request {req['id']})"


def _event(engine: Engine, name: str) -> str:
    if engine.spec(name) is None:
        raise RequestError(f"unknown event {name!r}; `evman list` shows the defined events")
    return name


def _run_row(engine: Engine, target: str) -> dict[str, Any]:
    try:
        run_id = int(target.split(":", 1)[1])
    except (IndexError, ValueError) as exc:
        raise RequestError(f"bad run target {target!r}; expected run:N") from exc
    row = engine.store.run(run_id)
    if row is None:
        raise RequestError(f"there is no run {run_id}; `evman history` lists runs")
    return row


def _trigger(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    name = _event(engine, target)
    run = engine._new_run(name, Trigger.MANUAL, now, triggered_by=who, now=now, fresh_window=True)
    if run is None:
        raise RequestError(f"{name}: not started, another run is active (concurrency=skip)")
    _apply_force(run, args)
    return f"run {run.id}"


def _apply_force(run: ActiveRun, args: dict[str, Any]) -> None:
    """args {"force": true}: start regardless of window and requires."""
    if args.get("force"):
        run.flags.add("forced")
        run.window_open = run.due_by = run.late_at = None


def _restart(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    if target.startswith("run:"):
        row = _run_row(engine, target)
    else:
        row = engine.store.latest_run(_event(engine, target)) or {}
        if not row:
            raise RequestError(f"{target} has no run to restart; use trigger to start it")
    active = [r for r in engine.active_runs() if r.event == row["event"]]
    if active:
        raise RequestError(f"run {active[0].id} of {row['event']!r} is still {active[0].state.value}; "
                           f"kill it first, or wait")
    if row["state"] not in RESTARTABLE:
        raise RequestError(f"run {row['id']} of {row['event']!r} {row['state']}; only failed, killed, "
                           f"lost, missed or skipped runs restart. Use trigger for a new run.")
    spec = engine.spec(row["event"])
    if spec is None:
        raise RequestError(f"event {row['event']!r} is no longer defined")
    attempt = engine.store.max_attempt(row["event"], row["scheduled_for"]) + 1
    scheduled = parse_iso(row["scheduled_for"]) or now
    run = engine._new_run(spec.name, Trigger.RESTART, scheduled, triggered_by=who, attempt=attempt,
                          repeats=row, needs_prepare=spec.on_failure.prepare is not None, now=now,
                          fresh_window=True)
    assert run is not None
    _apply_force(run, args)
    return f"run {run.id} (attempt {attempt}) restarts run {row['id']}"


def _kill(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    if target.startswith("run:"):
        row = _run_row(engine, target)
        runs = [r for r in engine.active_runs() if r.id == row["id"]]
        if not runs:
            raise RequestError(f"run {row['id']} of {row['event']!r} already finished ({row['state']}); "
                               f"nothing to kill")
    else:
        name = _event(engine, target)
        runs = [r for r in engine.active_runs() if r.event == name]
        if not runs:
            raise RequestError(f"{name} has no waiting or running run; nothing to kill")
    done = []
    for run in runs:
        if run.state is RunState.RUNNING:
            engine._kill(run, f"operator {who}")
            done.append(f"run {run.id} signalled")
        else:
            if run.preparing:  # its prepare step runs: stop that too, or it outlives the run
                engine._kill(run, f"operator {who}")
            engine._finish(run, RunState.KILLED, now, reason=f"killed before it started by {who}")
            done.append(f"run {run.id} cancelled")
    return "; ".join(done)


def _hold(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    return _set_held(engine, _event(engine, target), True, who)


def _release(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    return _set_held(engine, _event(engine, target), False, who)


def _set_held(engine: Engine, name: str, held: bool, who: str) -> str:
    engine._write("UPDATE events SET held = ?, held_by = ? WHERE name = ?", int(held),
                  who if held else None, name)
    engine._held[name] = held
    engine._dirty = True
    return f"{name} {'held' if held else 'released'}"


def _ack(engine: Engine, target: str, args: dict[str, Any], who: str, now: datetime) -> str:
    if target.startswith("alert:"):
        try:
            alert_id = int(target.split(":", 1)[1])
        except ValueError as exc:
            raise RequestError(f"bad alert target {target!r}; expected alert:N") from exc
        alert = engine.store.alert(alert_id)
        if alert is None:
            raise RequestError(f"there is no alert {alert_id}; `evman alerts` lists them")
        by = alert["acknowledged_by"] or engine.acked_this_tick.get(alert_id)
        if alert["acknowledged_at"] or alert_id in engine.acked_this_tick:
            raise RequestError(f"alert {alert_id} was acknowledged already by {by}")
        ids = [alert_id]
    else:
        name = _event(engine, target)
        ids = [a["id"] for a in engine.store.open_alerts_of(name)
               if not a["acknowledged_at"] and a["id"] not in engine.acked_this_tick]
        if not ids:
            raise RequestError(f"{name} has no unacknowledged open alert")
    for alert_id in ids:
        engine.acked_this_tick[alert_id] = who
        engine._write("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, pending = 0 "
                      "WHERE id = ? AND acknowledged_at IS NULL", who, iso(now), alert_id)
    return "acknowledged " + ", ".join(f"alert:{i}" for i in ids)


_HANDLERS: Final[dict[str, Callable[[Engine, str, dict[str, Any], str, datetime], str]]] = {
    "trigger": _trigger, "restart": _restart, "kill": _kill, "hold": _hold,
    "release": _release, "ack": _ack,
}
