"""What a burst's runs go through was made cheaper (bench W1): a run's row in one tuple, a new run
made from its draft's fields, a callable's context, a log's path. Each must be what the plain
way makes, for every kind of run."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from evman.engine.model import RunState, Trigger
from evman.engine.running.inprocess import RunContext
from evman.engine.running.logfiles import log_path
from evman.engine.store import RUN_COLUMNS
from evman.engine.tick.active import ActiveRun

AT = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def _runs() -> list[ActiveRun]:
    plain = ActiveRun.born(RunState.WAITING, 1, "plain", trigger=Trigger.SCHEDULE, attempt=1, scheduled_for=AT)
    started = ActiveRun.born(
        RunState.WAITING,
        2,
        "started",
        trigger=Trigger.RETRY,
        attempt=3,
        scheduled_for=AT,
        triggered_by="retry of run 1",
        repeats_run_id=1,
        not_before=AT + timedelta(minutes=1),
        window_open=AT,
        due_by=AT + timedelta(hours=2),
        late_at=AT + timedelta(minutes=10),
        needs_prepare=True,
        params={"mode": "full", "day": "2026-01-05"},
        approval={"route": "lead", "verdict": "approved"},
    )
    started.move(RunState.RUNNING)
    started.started_at, started.pid, started.log_path = AT, 4321, "/logs/started/2026-01-05/2.log"
    started.flags, started.pools = {"late", "forced"}, {"warehouse": 2, "db": 1}
    ended = ActiveRun.born(RunState.SKIPPED, 3, "ended", trigger=Trigger.SCHEDULE, attempt=1, scheduled_for=AT)
    ended.waiting_reason = "held"
    ended.end = {"ended_at": "x", "exit_code": 2, "reason": "why", "output_tail": "tail", "checks": "[]"}
    return [plain, started, ended]


@pytest.mark.parametrize("run", _runs(), ids=lambda r: r.event)
def test_a_runs_row_in_one_tuple_is_the_row_by_column_name(run: ActiveRun, monkeypatch: pytest.MonkeyPatch) -> None:
    by_name = run.values_by_name(AT, "host1")
    assert len(by_name) == len(RUN_COLUMNS)

    def refused(*_: Any) -> tuple[Any, ...]:
        raise AssertionError("the runs table has the columns values() writes: it should not go by name")

    monkeypatch.setattr(ActiveRun, "values_by_name", refused)
    assert run.values(AT, "host1") == by_name


def test_a_run_born_from_fields_is_the_run_born_from_arguments() -> None:
    fields: dict[str, Any] = {
        "event": "nightly",
        "trigger": Trigger.SCHEDULE,
        "attempt": 1,
        "scheduled_for": AT,
        "window_open": AT,
        "due_by": AT + timedelta(hours=1),
        "late_at": None,
        "params": {"mode": "full"},
    }
    made = ActiveRun.born_from(RunState.WAITING, 7, fields, AT)
    plain = ActiveRun.born(RunState.WAITING, 7, created_at=AT, **fields)
    assert made == plain and made.is_new
    made.flags.add("late")
    made.params["mode"] = "delta"
    again = ActiveRun.born_from(RunState.WAITING, 8, fields, AT)
    assert again.flags == set() and again.params == {"mode": "full"}  # nothing shared between runs


def test_a_callables_context_made_fast_is_the_dataclass() -> None:
    log = io.StringIO()
    args = ("nightly", 7, 2, "2026-01-05T03:00:00Z", log, {"A": "1"}, {"mode": "full"})
    made = RunContext.made(*args)
    assert made == RunContext(*args)
    with pytest.raises(AttributeError):
        made.event = "other"  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize(
    ("root", "event"), [("/var/evman/logs", "nightly"), ("/", "nightly"), ("/logs", "a.b-c_d"), ("/logs", "/abs")]
)
def test_a_log_path_is_the_joined_path(root: str, event: str) -> None:
    paris = datetime(2026, 1, 5, 0, 30, tzinfo=timezone(timedelta(hours=1)))  # 2026-01-04 in UTC
    for at in (AT, AT.replace(tzinfo=None), paris):
        day = (at if at.tzinfo is None else at.astimezone(UTC)).strftime("%Y-%m-%d")
        assert log_path(root, event, 12, at) == os.path.join(root, event, day, "12.log")
