"""Run parameters and groups on both backends: parameters reach a command (EVMAN_PARAM_*), a
callable (keyword arguments) and an HTTP body (with the run's X-Evman-* headers), are checked
against the declaration, recorded on the run and passed to followers; a group hold stops every
member, a group trigger starts its first events, and success(group:NAME) waits for all of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from tests.outside import found
from tests.receivers import HttpReceiver
from tests.stages import pool_jobs
from tests.stages.stage_helpers import evman, runs, states

pytestmark = pytest.mark.backends


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def ask(engine: Engine, clock: FakeClock, verb: str, target: str, **args: Any) -> dict[str, Any]:
    other = open_store(engine.store.target)
    try:
        request_id = other.add_request(verb, target, args=args or None, requested_by="ann", now=clock.now())
    finally:
        other.close()
    engine.settle(clock.now())
    row = engine.store.request(request_id)
    assert row is not None and row["handled_at"] is not None
    return row


def params_defs(tmp_path: Path, http: HttpReceiver) -> str:
    return f"""
    [[event]]
    name = "report"
    shell = 'printf "%s|%s|%s" "$EVMAN_PARAM_CUSTOMER" "$EVMAN_PARAM_DATE" "$EVMAN_PARAM_MODE" > {tmp_path}/report.txt'
    params = {{ customer = {{ required = true, pattern = "[a-z]+" }}, date = {{ default = "{{date}}" }}, mode = {{ default = "full", choices = ["full", "delta"] }} }}
    on_success = ["notify", "archive"]

    [[event]]
    name = "notify"
    call = "tests.stages.pool_jobs:record"

    [[event]]
    name = "archive"
    call = "tests.stages.pool_jobs:record"
    params = {{ customer = {{ default = "nobody" }}, keep = {{ default = "30" }} }}
    on_success = ["hook"]

    [[event]]
    name = "hook"
    http = {{ url = "http://127.0.0.1:{http.port}/hook", method = "POST" }}
    """


def test_parameters_reach_a_command_a_callable_and_an_http_body(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path, http: HttpReceiver
) -> None:
    pool_jobs.reset("params")
    engine = engine_factory(params_defs(tmp_path, http))
    answer = ask(engine, clock, "trigger", "report", params={"customer": "acme", "mode": "delta"})
    assert answer["outcome"] == "ok", answer
    for _ in range(4):
        engine.settle(clock.now())
    assert (tmp_path / "report.txt").read_text() == f"acme|{clock.now().date().isoformat()}|delta"
    assert sorted(pool_jobs.seen) == [
        ("archive", {"customer": "acme", "keep": "30"}),  # declares its own: the leader's value of the same name
        ("notify", {"customer": "acme", "date": clock.now().date().isoformat(), "mode": "delta"}),  # the leader's
    ]
    assert http.wait_for(1)
    (post,) = http.posts
    assert json.loads(post.body) == {"customer": "acme", "keep": "30"}  # archive's parameters, passed on
    (hook,) = runs(store, "hook")
    assert post.headers["X-Evman-Run-Id"] == str(hook["id"]) and post.headers["X-Evman-Attempt"] == "1"
    assert post.headers["X-Evman-Event"] == "hook" and post.headers["X-Evman-Scheduled-For"] == hook["scheduled_for"]
    assert post.headers["Content-Type"] == "application/json"
    (report,) = runs(store, "report")
    assert json.loads(report["params"]) == {"customer": "acme", "date": clock.now().date().isoformat(), "mode": "delta"}
    history = evman(store.target, "history", "report", "--json")
    assert history[0]["params"]["customer"] == "acme"


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ({}, "report needs parameter customer; give it: evman trigger report --param customer=VALUE"),
        (
            {"customer": "acme", "colour": "red"},
            "report declares no parameter 'colour'; its parameters: customer, date, mode",
        ),
        ({"customer": "Acme"}, "parameter customer: 'Acme' does not match its pattern '[a-z]+'"),
        ({"customer": "acme", "mode": "half"}, "parameter mode: 'half' is not one of its choices ('full', 'delta')"),
        ({"customer": ["a"]}, "parameter customer: got list; expected text"),
    ],
)
def test_parameters_are_checked_against_the_declaration(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path, http: HttpReceiver, given: dict, refusal: str
) -> None:
    engine = engine_factory(params_defs(tmp_path, http))
    answer = ask(engine, clock, "trigger", "report", params=given)
    assert answer["outcome"].startswith(refusal), answer["outcome"]
    assert runs(store, "report") == []  # refused: no run made


GROUP = """
    [[event]]
    name = "extract"
    call = "builtins:print"
    group = "nightly-billing"
    on_success = ["bill"]
    [[event]]
    name = "bill"
    call = "builtins:print"
    group = "nightly-billing"
    [[event]]
    name = "audit"
    call = "builtins:print"
    group = "nightly-billing"
    [[event]]
    name = "close-books"
    call = "builtins:print"
    requires = "success(group:nightly-billing)"
    [[event]]
    name = "outsider"
    call = "builtins:print"
"""


def test_a_group_hold_stops_every_member_and_release_lets_them_run(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(GROUP)
    assert ask(engine, clock, "hold", "group:nightly-billing")["detail"] == "3 events (audit, bill, extract) held"
    for name in ("extract", "bill", "audit", "outsider"):
        assert ask(engine, clock, "trigger", name)["outcome"] == "ok"
    clock.advance(timedelta(minutes=1))
    engine.settle(clock.now())
    for name in ("extract", "bill", "audit"):
        assert [(r["state"], r["waiting_reason"]) for r in runs(store, name)] == [("waiting", "held")]
    assert states(store, "outsider") == ["succeeded"]
    ask(engine, clock, "release", "group:nightly-billing")
    engine.settle(clock.now())
    engine.settle(clock.now())
    assert states(store, "audit") == ["succeeded"] and states(store, "extract") == ["succeeded"]


def test_a_group_trigger_starts_its_first_events_and_success_of_the_group_waits_for_all(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(GROUP)
    answer = ask(engine, clock, "trigger", "group:nightly-billing")
    assert answer["outcome"] == "ok" and "of audit" in answer["detail"] and "of extract" in answer["detail"]
    assert "of bill" not in answer["detail"]  # extract starts it (on_success)
    for _ in range(4):
        engine.settle(clock.now())
    assert states(store, "bill") == ["succeeded"]  # once: started by extract, not by the trigger too
    assert states(store, "close-books") == ["succeeded"]  # every member succeeded: its condition held
    closing = runs(store, "close-books")[0]
    assert closing["trigger"] == "condition"


def test_success_of_a_group_is_false_while_a_member_waits_or_failed(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(
        GROUP.replace('name = "audit"\n    call = "builtins:print"', 'name = "audit"\n    call = "builtins:exit"')
    )
    ask(engine, clock, "trigger", "group:nightly-billing")
    for _ in range(4):
        engine.settle(clock.now())
    assert states(store, "audit") == ["failed"]
    assert states(store, "close-books") == []
    shown = evman(store.target, "show", "close-books", "--json")
    assert shown["group"] is None
    from evman.engine.conditions import evaluate, parse_condition
    from evman.engine.tick.readview import ConditionView

    view = ConditionView(engine._view, engine._runs, engine._view.spec("close-books"))
    holds, why = evaluate(parse_condition("success(group:nightly-billing)"), view, clock.now())
    assert not holds and found(why, "reason").startswith(
        "success(group:nightly-billing) is false: success(audit) is false: its last run failed"
    )
