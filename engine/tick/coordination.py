"""What a new run takes with it: its run parameters (given, its leader's, or its event's
defaults) and, for an event with `approval`, the ask that pages the approver's route."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from evman.engine.clock import iso
from evman.engine.coordination import approvals, params
from evman.engine.model import AlertKind, EventSpec, Trigger
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick
from evman.engine.timing.durations import format_duration


def params_for(
    spec: EventSpec,
    scheduled_for: datetime,
    *,
    given: Mapping[str, Any] | None,
    leader: Mapping[str, str] | None,
    repeats: ActiveRun | Mapping[str, Any] | None,
) -> dict[str, str]:
    """A retry or restart takes the parameters of the run it repeats; a trigger those it was
    given (checked: ParamError says what is wrong); a follower its leader's (params.inherited);
    any other run its event's defaults. Raises ParamError when a value is missing or refused."""
    if repeats is not None:
        return dict(repeats.params) if isinstance(repeats, ActiveRun) else params.from_json(repeats.get("params"))
    if not spec.params and given is None:
        return dict(leader or {})
    date = params.business_date(scheduled_for, spec.timezone)
    if given is not None:
        return params.resolve(spec.params, given, event=spec.name, date=date)
    if leader is not None:
        return params.inherited(spec.params, leader, event=spec.name, date=date)
    return params.resolve(spec.params, {}, event=spec.name, date=date)


def carried_approval(trigger: Trigger, repeats: ActiveRun | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An automatic retry (or a rerun of a lost run) goes ahead on its first attempt's approval;
    a restart, a trigger and every other run is asked again."""
    if trigger is not Trigger.RETRY or repeats is None:
        return None
    found = repeats.approval if isinstance(repeats, ActiveRun) else approvals.from_json(repeats.get("approval"))
    return found if found and found.get("verdict") == approvals.APPROVED else None


def ask_approval(tick: Tick, spec: EventSpec, run: ActiveRun) -> None:
    """Record that `run` awaits approval and page the approver's route with what to run."""
    assert spec.approval is not None
    route = spec.approval.route or spec.driver
    run.approval = approvals.asked(route, tick.now)
    timeout = ""
    if spec.approval.timeout_s is not None:
        timeout = (
            f" If nobody decides within {format_duration(spec.approval.timeout_s)}, it is {_on_timeout_words(spec)}."
        )
    told = "".join(f" {k}={v}" for k, v in sorted(run.params.items()))
    message = (
        f"{spec.name} run {run.id} awaits approval ({run.trigger}{', params:' + told if told else ''}). "
        f"Approve: evman approve run:{run.id} --comment '...'  Reject: evman reject run:{run.id} "
        f"--comment '...'.{timeout}"
    )
    again = "approval" in tick.view.open_alert_kinds(spec.name)  # another run's ask is open: page anew
    tick.batch.alert(AlertKind.APPROVAL.value, spec.name, run.id, route, message, iso(tick.now))
    if again:
        tick.batch.alert_paged_again(spec.name, AlertKind.APPROVAL.value, run.id, message, iso(tick.now))
    tick.change("alert", spec.name, run.id, AlertKind.APPROVAL.value, message)


def _on_timeout_words(spec: EventSpec) -> str:
    assert spec.approval is not None
    return {"fail": "failed", "skip": "skipped", "approve": "approved by the timeout"}[spec.approval.on_timeout.value]
