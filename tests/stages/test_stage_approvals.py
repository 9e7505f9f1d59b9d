"""Approval gates on both backends: a run of an event with `approval` waits "awaiting approval",
its route is paged (a real json:// receiver) with what to run; approve, reject and the timeout
each page and are recorded on the run (who, when, comment); an approval given before the run
awaited one does not count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier
from evman.engine.store import Store, open_store
from tests.outside import found
from tests.receivers import HttpReceiver
from tests.stages.stage_helpers import alerts, evman

pytestmark = pytest.mark.backends


@pytest.fixture
def lead() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def notifier(db_path: Path, clock: FakeClock) -> Iterator[Notifier]:
    made = Notifier(db_path, clock, timeout_s=5.0, attempt_cap_s=5.0, throttle_s=0.0)
    yield made
    made.stop()


def defs(lead: HttpReceiver, on_timeout: str = "fail") -> str:
    return f"""
    [defaults]
    driver = "ops"
    [routes]
    lead = ["{lead.url("/lead")}"]
    ops = ["{lead.url("/ops")}"]
    [[event]]
    name = "promote"
    call = "builtins:print"
    approval = {{ route = "lead", timeout = "4h", on_timeout = "{on_timeout}" }}
    """


def ask(engine: Engine, clock: FakeClock, verb: str, target: str, by: str, **args: Any) -> dict[str, Any]:
    """A request as a program writes it (its own connection, at the fake clock's now), then a tick."""
    other = open_store(engine.store.target)
    try:
        request_id = other.add_request(verb, target, args=args or None, requested_by=by, now=clock.now())
    finally:
        other.close()
    engine.settle(clock.now())
    row = engine.store.request(request_id)
    assert row is not None and row["handled_at"] is not None
    return row


def pages(receiver: HttpReceiver, path: str) -> list[str]:
    return [p.json["message"] for p in receiver.posts if p.path == path]


def waiting_run(engine: Engine, clock: FakeClock) -> int:
    row = ask(engine, clock, "trigger", "promote", "ci")
    assert row["outcome"] == "ok", row
    return int(row["detail"].split()[1])


def test_approve_pages_the_route_and_records_who_and_the_comment(
    engine_factory, clock: FakeClock, store: Store, lead: HttpReceiver, notifier: Notifier
) -> None:
    engine = engine_factory(defs(lead))
    run_id = waiting_run(engine, clock)
    run = found(store.run(run_id))
    assert run["state"] == "waiting" and run["waiting_reason"].startswith("awaiting approval from lead since ")
    notifier.run_once(clock.now())
    (asked,) = pages(lead, "/lead")
    assert f"evman approve run:{run_id}" in asked and f"evman reject run:{run_id}" in asked
    clock.advance(timedelta(minutes=20))
    answer = ask(engine, clock, "approve", f"run:{run_id}", "ann", comment="release notes checked")
    assert answer["outcome"] == "ok" and answer["detail"] == f"run {run_id} of promote approved"
    engine.settle(clock.now())
    run = found(store.run(run_id))
    assert run["state"] == "succeeded"
    assert '"by": "ann (request' in run["approval"] and '"comment": "release notes checked"' in run["approval"]
    assert '"verdict": "approved"' in run["approval"]
    notifier.run_once(clock.now())
    assert any(f"run {run_id}: approved by ann" in page for page in pages(lead, "/lead"))
    (approval,) = alerts(store, "promote", "approval")
    assert approval["status"] == "resolved"
    history = evman(store.target, "history", "promote", "--json")
    assert history[0]["approval"]["by"].startswith("ann") and history[0]["approval"]["comment"]


def test_reject_skips_the_run_pages_and_records_who(
    engine_factory, clock: FakeClock, store: Store, lead: HttpReceiver, notifier: Notifier
) -> None:
    engine = engine_factory(defs(lead))
    run_id = waiting_run(engine, clock)
    answer = ask(engine, clock, "reject", "promote", "bob", comment="not on a Friday")
    assert answer["outcome"] == "ok"
    run = found(store.run(run_id))
    assert run["state"] == "skipped" and run["reason"].startswith("rejected by bob (request")
    assert run["reason"].endswith(": not on a Friday") and '"verdict": "rejected"' in run["approval"]
    notifier.run_once(clock.now())
    assert any("rejected by bob" in page and "it will not run" in page for page in pages(lead, "/lead"))
    assert not alerts(store, "promote", "failed")  # a decision, not a failure: the driver is not paged


@pytest.mark.parametrize("on_timeout", ["fail", "skip", "approve"])
def test_the_timeout_decides_for_nobody_and_pages(
    engine_factory, clock: FakeClock, store: Store, lead: HttpReceiver, notifier: Notifier, on_timeout: str
) -> None:
    engine = engine_factory(defs(lead, on_timeout))
    run_id = waiting_run(engine, clock)
    clock.advance(timedelta(hours=3, minutes=59))
    engine.settle(clock.now())
    assert found(store.run(run_id))["state"] == "waiting"
    clock.advance(timedelta(minutes=1))
    engine.settle(clock.now())
    engine.settle(clock.now())
    run = found(store.run(run_id))
    assert run["state"] == {"fail": "failed", "skip": "skipped", "approve": "succeeded"}[on_timeout]
    assert '"by": "nobody: the approval timed out' in run["approval"]
    notifier.run_once(clock.now())
    assert any("nobody decided within 4h" in page for page in pages(lead, "/lead"))
    if on_timeout == "fail":
        assert run["reason"] == "approval timed out after 4h: nobody approved or rejected it (on_timeout = fail)"
        assert alerts(store, "promote", "failed")  # and the driver hears of the failure
        assert any("promote failed" in page for page in pages(lead, "/ops"))


def test_an_approval_given_before_the_run_awaited_one_does_not_count(
    engine_factory, clock: FakeClock, store: Store, lead: HttpReceiver
) -> None:
    engine = engine_factory(defs(lead))
    early = ask(engine, clock, "approve", "promote", "eve")
    assert early["outcome"].startswith("no run of promote awaits approval; an approval counts only for a run")
    before = clock.now()
    clock.advance(timedelta(minutes=5))
    run_id = waiting_run(engine, clock)
    other = open_store(engine.store.target)  # a request written before the ask, that the engine reads after it
    try:
        late = other.add_request("approve", f"run:{run_id}", requested_by="eve", now=before)
    finally:
        other.close()
    engine.settle(clock.now())
    row = found(store.request(late))
    assert row["outcome"].startswith(f"this was asked at {iso(before)}, before run {run_id} awaited approval")
    assert found(store.run(run_id))["state"] == "waiting"
    assert ask(engine, clock, "approve", f"run:{run_id}", "ann")["outcome"] == "ok"


def test_approving_twice_or_a_run_that_needs_none_is_refused_in_words(
    engine_factory, clock: FakeClock, store: Store, lead: HttpReceiver
) -> None:
    engine = engine_factory(defs(lead) + '\n    [[event]]\n    name = "plain"\n    call = "builtins:print"\n')
    run_id = waiting_run(engine, clock)
    assert ask(engine, clock, "approve", f"run:{run_id}", "ann")["outcome"] == "ok"
    again = ask(engine, clock, "approve", f"run:{run_id}", "ann")["outcome"]
    assert again.startswith(f"run {run_id} of promote is succeeded") or again.startswith(
        f"run {run_id} of promote was approved"
    )
    assert (
        ask(engine, clock, "approve", "plain", "ann")["outcome"] == "plain needs no approval (it has no approval key)"
    )
    assert ask(engine, clock, "approve", "run:999", "ann")["outcome"].startswith("there is no run 999")
