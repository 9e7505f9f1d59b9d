"""The mailbox: request rows written with the standard library's sqlite3 only, as any other
program would, and what the engine makes of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from tests.engine_cli import (
    SETTLE_S,
    insert_request,
    kill_running_commands,  # noqa: F401 (an autouse fixture)
    load_defs,
    rows,
    runs,
    tick_until,
)

pytestmark = pytest.mark.backends


Make = Callable[..., Engine]

DEFS = """
    [[event]]
    name = "slow"
    run = "sleep 30"
    [[event]]
    name = "quick"
    run = "true"
    [[event]]
    name = "broken"
    run = "false"
    [[event]]
    name = "gate"
    run = "true"
"""


def mail(db: Path, *requests: tuple[str, str] | tuple[str, str, str | None, str | None]) -> list[int]:
    """Insert (verb, target[, args JSON, dedupe_key]) rows with plain sqlite3 (psycopg for a
    PostgreSQL database), as any program would; return their ids."""
    return [
        insert_request(
            db,
            verb,
            target,
            args=None if args is None else json.loads(args),
            requested_by="some-script",
            dedupe_key=key,
        )
        for verb, target, args, key in ((*req, None, None)[:4] for req in requests)
    ]


def outcomes(db: Path, ids: list[int]) -> list[str]:
    got = {r["id"]: r for r in rows(db, "SELECT * FROM requests")}
    assert all(got[i]["handled_at"] for i in ids), "every request is marked handled"
    return [got[i]["outcome"] for i in ids]


def test_requests_are_handled_in_id_order_with_ok_or_an_error(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    engine = engine_factory(DEFS)
    ids = mail(
        db_path,
        ("trigger", "quick", None, "nightly-2026-01-05"),
        ("trigger", "quick", None, "nightly-2026-01-05"),  # same key: not again
        ("frobnicate", "quick"),  # unknown verb
        ("trigger", "no-such-event"),  # unknown event
        ("release", "gate"),
        ("hold", "gate"),  # order decides: held
        ("hold", "quick"),
        ("release", "quick"),  # order decides: released
        ("trigger", "gate"),
        ("kill", "broken"),
    )  # nothing to kill
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    got = outcomes(db_path, ids)
    assert got[0] == "ok"
    assert got[1] == f"duplicate of request {ids[0]}; not acted on again"
    assert got[2].startswith("unknown verb 'frobnicate'; expected one of trigger, restart")
    assert got[3].startswith("unknown event 'no-such-event'")
    assert got[4:9] == ["ok"] * 5
    assert got[9] == "broken has no waiting or running run; nothing to kill"
    held = {r["name"]: r["held"] for r in rows(db_path, "SELECT name, held FROM events")}
    assert held["gate"] == 1 and held["quick"] == 0
    quick = runs(db_path, "quick")
    assert len(quick) == 1 and quick[0]["trigger"] == "trigger"
    assert "some-script" in quick[0]["triggered_by"]
    gate = runs(db_path, "gate")
    assert [(r["state"], r["waiting_reason"]) for r in gate] == [("waiting", "held")]
    (release_id,) = mail(db_path, ("release", "gate"))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert outcomes(db_path, [release_id]) == ["ok"]
    assert runs(db_path, "gate")[0]["state"] == "succeeded"


def test_kill_restart_and_ack_through_the_mailbox(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = engine_factory(DEFS)
    mail(db_path, ("trigger", "slow"), ("trigger", "broken"))
    tick_until(engine, lambda: runs(db_path, "slow")[0]["state"] == "running", now=clock.now(), what="slow to start")
    slow_id = int(runs(db_path, "slow")[0]["id"])
    (kill_id,) = mail(db_path, ("kill", f"run:{slow_id}"))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert outcomes(db_path, [kill_id]) == ["ok"]
    assert runs(db_path, "slow")[0]["state"] == "killed"
    assert runs(db_path, "broken")[0]["state"] == "failed"

    (alert,) = rows(db_path, "SELECT * FROM alerts WHERE event = 'broken'")
    assert alert["kind"] == "failed" and alert["acknowledged_at"] is None
    restart_id, ack_id, again_id, bad_run = mail(
        db_path,
        ("restart", f"run:{slow_id}"),
        ("ack", f"alert:{alert['id']}"),
        ("ack", f"alert:{alert['id']}"),
        ("restart", "run:999"),
    )
    tick_until(
        engine,
        lambda: runs(db_path, "slow")[-1]["state"] == "running",
        now=clock.now(),
        what="the restarted run to start",
    )
    got = outcomes(db_path, [restart_id, ack_id, again_id, bad_run])
    assert got[0] == "ok" and got[1] == "ok"
    assert got[2].startswith(f"alert {alert['id']} was acknowledged already by some-script")
    assert got[3].startswith("there is no run 999")
    first, second = runs(db_path, "slow")
    assert (second["trigger"], second["attempt"], second["repeats_run_id"]) == ("restart", 2, slow_id)
    assert second["scheduled_for"] == first["scheduled_for"]
    (acked,) = rows(db_path, "SELECT * FROM alerts WHERE id = ?", (alert["id"],))
    assert "some-script" in acked["acknowledged_by"] and acked["acknowledged_at"]

    (finished_kill,) = mail(db_path, ("kill", f"run:{slow_id}"))
    engine.tick(clock.now())
    assert "already finished (killed)" in outcomes(db_path, [finished_kill])[0]


def test_requests_queued_before_any_engine_runs_are_handled_at_its_first_tick(
    engine_factory: Make, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    load_defs(db_path, DEFS, tmp_path, clock.now())
    ids = mail(db_path, ("trigger", "quick", json.dumps({"force": True}), None), ("trigger", "quick", "[1, 2]", None))
    engine = engine_factory()
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    got = outcomes(db_path, ids)
    assert got[0] == "ok"
    assert got[1] == "args must be a JSON object"
    assert [r["state"] for r in runs(db_path, "quick")] == ["succeeded"]


def test_an_outcome_quotes_a_huge_target_cut_short(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = engine_factory(DEFS)
    huge = "x" * 100_000
    ids = mail(db_path, ("trigger", huge), ("frobnicate" * 10_000, "quick"), ("kill", f"run:{huge}"))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    got = outcomes(db_path, ids)
    assert all(len(text) < 300 for text in got), [len(t) for t in got]
    assert got[0].startswith("unknown event 'xxxx") and "(100,000 characters)" in got[0]
    assert "(100,000 characters)" in got[1] and "(100,004 characters)" in got[2]
