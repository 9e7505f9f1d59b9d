"""The verbs about runs: trigger (a new run now), restart (a finished run again), kill (stop an
active run, or ask its owner to)."""

from __future__ import annotations

from typing import Any

from evman.engine.clock import parse_iso
from evman.engine.fleet.elsewhere import Remote
from evman.engine.model import ACTIVE_STATES, RESTARTABLE, RunState, Trigger
from evman.engine.quoting import quoted
from evman.engine.tick import lifecycle, routing
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.tick.routing import Routed
from evman.engine.verbs import groups
from evman.engine.verbs.targets import RequestError, event_named, run_row


def trigger(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    """A new run of the event, or of each first event of group:NAME (those the others follow);
    args {"params": {...}} are its run parameters, checked against its declaration before any
    run is made."""
    names = groups.entry_events(tick, target) if target.startswith("group:") else [event_named(tick, target)]
    given = groups.params_for_each(tick, names, groups.given_params(args) or {})
    made = []
    for name in names:
        run = lifecycle.new_run(
            tick, name, Trigger.MANUAL, tick.now, triggered_by=who, fresh_window=True, params=given[name]
        )
        if run is None and len(names) == 1:
            raise RequestError(f"{name}: not started, another run is active (concurrency=skip)")
        if run is not None:
            _apply_force(run, args)
            made.append(f"run {run.id}" + (f" of {name}" if len(names) > 1 else ""))
    return ", ".join(made) or f"{target}: nothing started, each event has an active run (concurrency=skip)"


def _apply_force(run: ActiveRun, args: dict[str, Any]) -> None:
    """args {"force": true}: start regardless of window and requires."""
    if args.get("force"):
        run.flags.add("forced")
        run.window_open = run.due_by = run.late_at = None


def restart(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
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
        row = run_row(tick, target)
    else:
        row = tick.view.store.latest_run(event_named(tick, target)) or {}
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


def kill(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
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
        row = run_row(tick, target)
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
    name = event_named(tick, target)
    runs, remote = tick.runs.of(name), tick.elsewhere.of(name)
    if not runs and not remote:
        raise RequestError(f"{name} has no waiting or running run; nothing to kill")
    if not runs:  # all elsewhere: the first owner kills its own and asks the others
        raise routing.route_to(_owned_first(remote), f"kill {name}")
    return runs, remote


def _owned_first(remote: list[Remote]) -> Remote:
    """The first run that an engine owns (one no engine owns yet cannot answer)."""
    return next((r for r in remote if r.engine_id is not None), remote[0])
