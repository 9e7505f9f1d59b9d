"""Approval gates: a run of an event with `approval` waits until someone approves it; `evman
approve` and `evman reject` (request verbs) decide, and the approval's timeout decides for
nobody. Each decision is recorded on the run (who, when, comment) and paged to the route asked."""

from __future__ import annotations

from typing import Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.coordination import approvals
from evman.engine.model import AlertKind, EventSpec, OnTimeout, RunState
from evman.engine.quoting import quoted
from evman.engine.tick import lifecycle
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.tick.routing import Routed
from evman.engine.timing.durations import format_duration
from evman.engine.timing.wording import local_text
from evman.engine.verbs.targets import RequestError

COMMENT_MAX: Final = 2000


class ApprovalError(RequestError):
    """The approval asked for cannot be given; the text says why and what to do."""


def waiting_reason(tick: Tick, run: ActiveRun, spec: EventSpec) -> str | None:
    """ "awaiting approval ..." while nobody has decided on `run`, else None."""
    if not approvals.is_pending(run.approval):
        return None
    assert run.approval is not None
    route = run.approval.get("route") or "its driver"
    asked = approvals.asked_at(run.approval)
    since = f" since {local_text(asked, spec, tick.now)}" if asked else ""
    return f"awaiting approval from {route}{since} (evman approve run:{run.id})"


def time_out(tick: Tick, run: ActiveRun, spec: EventSpec) -> bool:
    """Decide for nobody when the approval's timeout has passed; True when the run ended."""
    if spec.approval is None or not approvals.is_pending(run.approval):
        return False
    assert run.approval is not None
    due = approvals.times_out_at(run.approval, spec.approval)
    if due is None or tick.now < due:
        return False
    took = format_duration(spec.approval.timeout_s or 0)
    how = spec.approval.on_timeout
    if how is OnTimeout.APPROVE:
        _record(tick, run, spec, approvals.APPROVED, "nobody: the approval timed out (on_timeout = approve)", None)
        _page(tick, run, spec, AlertKind.APPROVAL_TIMEOUT, f"nobody decided within {took}; it goes ahead")
        return False
    _record(tick, run, spec, approvals.TIMED_OUT, "nobody: the approval timed out", None)
    state = RunState.FAILED if how is OnTimeout.FAIL else RunState.SKIPPED
    said = f"approval timed out after {took}: nobody approved or rejected it (on_timeout = {how.value})"
    _page(tick, run, spec, AlertKind.APPROVAL_TIMEOUT, f"nobody decided within {took}; it is {state.value}")
    lifecycle.finish(tick, run, state, tick.now, reason=said, final=True)
    return True


def approve(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    run, spec = _awaiting(tick, target)
    comment = _comment(args)
    _record(tick, run, spec, approvals.APPROVED, who, comment)
    _page(tick, run, spec, AlertKind.APPROVED, f"approved by {who}" + (f": {comment}" if comment else ""))
    return f"run {run.id} of {run.event} approved"


def reject(tick: Tick, target: str, args: dict[str, Any], who: str) -> str:
    run, spec = _awaiting(tick, target)
    comment = _comment(args)
    _record(tick, run, spec, approvals.REJECTED, who, comment)
    said = f"rejected by {who}" + (f": {comment}" if comment else "")
    _page(tick, run, spec, AlertKind.REJECTED, f"{said}; it will not run")
    lifecycle.finish(tick, run, RunState.SKIPPED, tick.now, reason=said, final=True)
    return f"run {run.id} of {run.event} rejected (skipped)"


def _record(tick: Tick, run: ActiveRun, spec: EventSpec, verdict: str, by: str, comment: str | None) -> None:
    assert run.approval is not None
    run.approval = approvals.decided(run.approval, verdict, by, tick.now, comment)
    if not run.is_new:
        tick.batch.run_approval(run.id, approvals.to_json(run.approval))
    if not any(approvals.is_pending(r.approval) for r in tick.runs.of(spec.name) if r is not run):
        tick.batch.alert_resolved(spec.name, AlertKind.APPROVAL.value, iso(tick.now))


def _page(tick: Tick, run: ActiveRun, spec: EventSpec, kind: AlertKind, what: str) -> None:
    route = (run.approval or {}).get("route") or spec.driver
    message = f"{spec.name} run {run.id}: {what}."
    tick.batch.alert_notice(kind.value, spec.name, run.id, route, message, iso(tick.now))
    tick.change("alert", spec.name, run.id, kind.value, message)


def _comment(args: dict[str, Any]) -> str | None:
    comment = args.get("comment")
    if comment is None:
        return None
    if not isinstance(comment, str) or "\0" in comment or len(comment) > COMMENT_MAX:
        raise ApprovalError(f"comment must be text of at most {COMMENT_MAX} characters, without NUL")
    return comment.strip() or None


def _awaiting(tick: Tick, target: str) -> tuple[ActiveRun, EventSpec]:
    """The run an approve or reject names: run:N, or the one run of an event that awaits approval.
    Another engine's run: Routed. An approval given before the run was asked does not count."""
    run = _run_named(tick, target) if target.startswith("run:") else _run_of_event(tick, target)
    spec = tick.view.spec(run.event)
    if spec is None:
        raise ApprovalError(f"event {quoted(run.event)} is no longer defined")
    if not approvals.is_pending(run.approval):
        done = approvals.summary(run.approval)
        raise ApprovalError(
            f"run {run.id} of {run.event} " + (f"was {done}" if done else "needs no approval (its event has none)")
        )
    given = parse_iso((tick.request or {}).get("requested_at"))
    asked = approvals.asked_at(run.approval)
    if given is not None and asked is not None and given < asked:
        raise ApprovalError(
            f"this was asked at {iso(given)}, before run {run.id} awaited approval ({iso(asked)}); an approval "
            f"counts only for a run that exists: send it again"
        )
    return run, spec


def _run_named(tick: Tick, target: str) -> ActiveRun:
    try:
        run_id = int(target.split(":", 1)[1])
    except ValueError as exc:
        raise ApprovalError(f"bad run target {quoted(target)}; expected run:N") from exc
    local = tick.runs.get(run_id)
    if local is not None:
        return local
    row = tick.view.store.run(run_id)
    if row is None:
        raise ApprovalError(f"there is no run {run_id}; an approval counts only for a run that exists")
    if row["state"] == RunState.WAITING.value and tick.owner is not None:
        raise Routed(row.get("engine_id"), f"run {run_id} waits on another engine")
    raise ApprovalError(f"run {run_id} of {row['event']} is {row['state']}; only a waiting run awaits approval")


def _run_of_event(tick: Tick, name: str) -> ActiveRun:
    spec = tick.view.spec(name)
    if spec is None:
        raise ApprovalError(f"unknown event {quoted(name)}; `evman list` shows the defined events")
    if spec.approval is None:
        raise ApprovalError(f"{name} needs no approval (it has no approval key)")
    pending = [r for r in tick.runs.of(name) if approvals.is_pending(r.approval)]
    if len(pending) == 1:
        return pending[0]
    if pending:
        ids = ", ".join(f"run:{r.id}" for r in pending)
        raise ApprovalError(
            f"{name} has {len(pending)} runs awaiting approval ({ids}); name one, e.g. run:{pending[0].id}"
        )
    remote = [r for r in tick.elsewhere.of(name) if r.state is RunState.WAITING]
    if remote:
        raise Routed(remote[0].engine_id, f"{name}'s waiting run {remote[0].id} is on {remote[0].where}")
    raise ApprovalError(
        f"no run of {name} awaits approval; an approval counts only for a run that exists and waits "
        f"(approve it when it is asked: evman approve run:N)"
    )
