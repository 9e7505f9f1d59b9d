"""Stage 1: act on rows of the `requests` mailbox (trigger, restart, kill, hold, release, ack)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.fleet.elsewhere import Remote
from evman.engine.model import ACTIVE_STATES, RESTARTABLE, RunState, Trigger
from evman.engine.quoting import quoted
from evman.engine.tick import lifecycle, routing
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.tick.routing import Routed

VERBS: Final = ("trigger", "restart", "kill", "hold", "release", "ack")


class RequestError(ValueError):
    pass


def handle_requests(tick: Tick) -> None:
    """Answer every open request in id order; each answer is written with this tick's writes."""
    store = tick.view.store
    for req in store.claim_requests(tick.owner):  # several engines: each request to one
        key = req["dedupe_key"]
        earlier = store.dedupe_seen(key, int(req["id"])) if key else None
        if earlier is not None:
            outcome, detail = f"duplicate of request {earlier}; not acted on again", None
        else:
            try:
                outcome, detail = handle_request(tick, dict(req))
            except Routed as routed:
                _leave_open(tick, dict(req), routed)
                continue
        tick.batch.request_handled(int(req["id"]), iso(tick.now), outcome, detail)
        tick.change("request", str(req["target"]), None, outcome, f"{req['verb']} #{req['id']}")


def _leave_open(tick: Tick, req: dict[str, Any], routed: Routed) -> None:
    """Several engines: not this engine's to answer; its owner claims it at its next tick."""
    if routed.engine_id is not None and routed.engine_id != req.get("engine_id"):
        tick.batch.request_routed(int(req["id"]), routed.engine_id)
    tick.change("request", str(req["target"]), None, "routed", f"{req['verb']} #{req['id']}: {routed}")


def handle_request(tick: Tick, req: dict[str, Any]) -> tuple[str, str | None]:
    """Act on one request row; returns (outcome, detail): outcome is "ok" or an error text.
    Raises Routed when another engine owns what it names (several engines)."""
    verb = str(req["verb"]).strip().lower()
    handler = _HANDLERS.get(verb)
    if handler is None:
        return f"unknown verb {quoted(verb)}; expected one of {', '.join(VERBS)}", None
    try:
        args = json.loads(req["args"]) if req.get("args") else {}
        if not isinstance(args, dict):
            raise RequestError("args must be a JSON object")
        detail = handler(tick, str(req["target"]).strip(), args, _who(req))
    except RequestError as exc:
        return str(exc), None
    except (ValueError, TypeError) as exc:
        return f"bad request: {exc}", None
    return "ok", detail


def _who(req: dict[str, Any]) -> str:
    by = req.get("requested_by") or "someone"
    return f"{by} (request {req['id']})"


def _event(tick: Tick, name: str) -> str:
    if tick.view.spec(name) is None:
        raise RequestError(f"unknown event {quoted(name)}; `evman list` shows the defined events")
    return name


def _run_row(tick: Tick, target: str) -> dict[str, Any]:
    try:
        run_id = int(target.split(":", 1)[1])
    except (IndexError, ValueError) as exc:
        raise RequestError(f"bad run target {quoted(target)}; expected run:N") from exc
    row = tick.view.store.run(run_id)
    if row is None:
        raise RequestError(f"there is no run {run_id}; `evman history` lists runs")
    return row


def _trigger(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    name = _event(tick, target)
    run = lifecycle.new_run(tick, name, Trigger.MANUAL, tick.now, triggered_by=who, fresh_window=True)
    if run is None:
        raise RequestError(f"{name}: not started, another run is active (concurrency=skip)")
    _apply_force(run, args)
    return f"run {run.id}"


def _apply_force(run: ActiveRun, args: dict[str, Any]) -> None:
    """args {"force": true}: start regardless of window and requires."""
    if args.get("force"):
        run.flags.add("forced")
        run.window_open = run.due_by = run.late_at = None


def _restart(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    row = _restartable(tick, target)
    spec = tick.view.spec(row["event"])
    if spec is None:
        raise RequestError(f"event {row['event']!r} is no longer defined")
    attempt = tick.view.store.max_attempt(row["event"], row["scheduled_for"]) + 1
    scheduled = parse_iso(row["scheduled_for"]) or tick.now
    run = lifecycle.new_run(
        tick,
        spec.name,
        Trigger.RESTART,
        scheduled,
        triggered_by=who,
        attempt=attempt,
        repeats=row,
        needs_prepare=spec.on_failure.prepare is not None,
        fresh_window=True,
    )
    assert run is not None
    _apply_force(run, args)
    return f"run {run.id} (attempt {attempt}) restarts run {row['id']}"


def _restartable(tick: Tick, target: str) -> dict[str, Any]:
    """The run a restart repeats: named, or the event's latest; refused while one is active."""
    if target.startswith("run:"):
        row = _run_row(tick, target)
    else:
        row = tick.view.store.latest_run(_event(tick, target)) or {}
        if not row:
            raise RequestError(f"{quoted(target)} has no run to restart; use trigger to start it")
    active = tick.runs.of(row["event"])
    if active:
        raise RequestError(f"run {active[0].id} of {row['event']!r} is still {active[0].state}; kill it first, or wait")
    remote = tick.elsewhere.of(row["event"])
    if remote:  # its owner answers: it knows whether the run still runs
        raise routing.route_to(_owned_first(remote), f"restart {target}")
    if row["state"] not in RESTARTABLE:
        raise RequestError(
            f"run {row['id']} of {row['event']!r} {row['state']}; only failed, killed, "
            f"lost, missed or skipped runs restart. Use trigger for a new run."
        )
    return row


def _kill(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    """Kill (or cancel) this engine's runs; ask the other owners to kill theirs (several engines)."""
    local, remote = _runs_to_kill(tick, target)
    done = [_kill_one(tick, run, who, args.get("replaced_by")) for run in local]
    asked = routing.ask_to_kill(tick, remote, f"{who} via {routing.me(tick)}")
    done += [f"run {r.id} ({r.state} on {r.where}): asked in request {i}" for r, i in zip(remote, asked, strict=True)]
    return "; ".join(done)


def _kill_one(tick: Tick, run: ActiveRun, who: str, replaced_by: Any) -> str:
    if replaced_by is not None:  # another engine's run replaces this one (concurrency=replace)
        was = "signalled" if run.state is RunState.RUNNING else "skipped"
        lifecycle.cancel(tick, run, by=f"replaced by run {replaced_by}")
        return f"run {run.id} {was} (replaced by run {replaced_by})"
    if run.state is RunState.RUNNING:
        lifecycle.kill(tick, run, f"operator {who}")
        return f"run {run.id} signalled"
    if run.preparing:  # its prepare step runs: stop that too, or it outlives the run
        lifecycle.kill(tick, run, f"operator {who}")
    lifecycle.finish(tick, run, RunState.KILLED, tick.now, reason=f"killed before it started by {who}")
    return f"run {run.id} cancelled"


def _runs_to_kill(tick: Tick, target: str) -> tuple[list[ActiveRun], list[Remote]]:
    """(this engine's runs to kill, the other engines' active runs of the event)."""
    if target.startswith("run:"):
        row = _run_row(tick, target)
        run = tick.runs.get(int(row["id"]))
        if run is not None:
            return [run], []
        owner = row.get("engine_id")
        if row["state"] in ACTIVE_STATES and tick.owner is not None and owner != tick.owner.engine_id:
            raise Routed(
                owner,
                f"run {row['id']} is {row['state']} on " + ("no engine yet" if owner is None else f"engine {owner}"),
            )
        raise RequestError(f"run {row['id']} of {row['event']!r} already finished ({row['state']}); nothing to kill")
    name = _event(tick, target)
    runs, remote = tick.runs.of(name), tick.elsewhere.of(name)
    if not runs and not remote:
        raise RequestError(f"{name} has no waiting or running run; nothing to kill")
    if not runs:  # all elsewhere: the first owner kills its own and asks the others
        raise routing.route_to(_owned_first(remote), f"kill {name}")
    return runs, remote


def _owned_first(remote: list[Remote]) -> Remote:
    """The first run that an engine owns (one no engine owns yet cannot answer)."""
    return next((r for r in remote if r.engine_id is not None), remote[0])


def _hold(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    return _set_held(tick, _event(tick, target), True, who)


def _release(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    return _set_held(tick, _event(tick, target), False, who)


def _set_held(tick: Tick, name: str, held: bool, who: str) -> str:
    tick.batch.held(name, held, who if held else None)
    tick.view.set_held(name, held)
    return f"{name} {'held' if held else 'released'}"


def _ack(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    ids = [_alert_to_ack(tick, target)] if target.startswith("alert:") else _event_alerts_to_ack(tick, target)
    for alert_id in ids:
        tick.acked[alert_id] = who
        tick.batch.alert_acked(alert_id, who, iso(tick.now))
    return "acknowledged " + ", ".join(f"alert:{i}" for i in ids)


def _alert_to_ack(tick: Tick, target: str) -> int:
    try:
        alert_id = int(target.split(":", 1)[1])
    except ValueError as exc:
        raise RequestError(f"bad alert target {quoted(target)}; expected alert:N") from exc
    alert = tick.view.store.alert(alert_id)
    if alert is None:
        raise RequestError(f"there is no alert {alert_id}; `evman alerts` lists them")
    by = alert["acknowledged_by"] or tick.acked.get(alert_id)
    if alert["acknowledged_at"] or alert_id in tick.acked:
        raise RequestError(f"alert {alert_id} was acknowledged already by {by}")
    return alert_id


def _event_alerts_to_ack(tick: Tick, target: str) -> list[int]:
    name = _event(tick, target)
    ids = [
        int(a["id"])
        for a in tick.view.store.open_alerts_of(name)
        if not a["acknowledged_at"] and a["id"] not in tick.acked
    ]
    if not ids:
        raise RequestError(f"{name} has no unacknowledged open alert")
    return ids


_HANDLERS: Final[dict[str, Callable[[Tick, str, dict[str, Any], str], str]]] = {
    "trigger": _trigger,
    "restart": _restart,
    "kill": _kill,
    "hold": _hold,
    "release": _release,
    "ack": _ack,
}
