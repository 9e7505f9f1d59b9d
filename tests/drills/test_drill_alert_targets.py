"""Dead and slow alert targets drill: alerts go to a port that refuses connections, to an HTTP
server that hangs, and to one that answers 500, for several minutes of simulated time (a
FakeClock). The engine's tick keeps its pace meanwhile; every attempt is recorded; once the
targets come back every alert is delivered; and no alert is sent twice for an attempt that
succeeded."""

from __future__ import annotations

import socket
import statistics
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.drills.common import REPORTS, rows
from tests.receivers import HttpReceiver

DEFS = """
    [defaults]
    timezone = "UTC"
    driver = "good"

    [routes]
    good = ["{good}"]
    refused = ["{refused}"]
    hanging = ["{hanging}"]
    error500 = ["{error500}"]

    [[event]]
    name = "to-refused"
    run = "false"
    schedule = "every 1 minutes"
    on_failure = {{ alert = "refused" }}

    [[event]]
    name = "to-hanging"
    run = "false"
    schedule = "every 1 minutes"
    on_failure = {{ alert = "hanging" }}

    [[event]]
    name = "to-500"
    run = "false"
    schedule = "every 1 minutes"
    on_failure = {{ alert = "error500" }}

    [[event]]
    name = "late-to-refused"
    run = "false"
    on_failure = {{ alert = "refused" }}
"""
EVENTS = ("to-refused", "to-hanging", "to-500")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(method: Callable[..., Any], took: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return method(*args, **kwargs)
        finally:
            took.append(time.monotonic() - start)

    return wrapper


def _event_of(body: str) -> str | None:
    return next((e for e in ("late-to-refused", *EVENTS) if e in body), None)


def _drill(engine_factory, store: Store, clock: FakeClock, db_path: Path, *, dead_minutes: int) -> None:
    from evman.engine.paging.notifier import Notifier

    good, hanging, error500 = HttpReceiver().start(), HttpReceiver(), HttpReceiver()
    hanging.delay_s = 3.0  # longer than the notifier's timeout: each attempt times out
    hanging.start()
    error500.status = 500
    error500.start()
    refused = HttpReceiver()
    refused.port = _free_port()  # nothing listens there until the target "comes back"
    engine = engine_factory(
        textwrap.dedent(
            DEFS.format(
                good=good.url("/good"),
                refused=refused.url("/refused"),
                hanging=hanging.url("/hanging"),
                error500=error500.url("/error500"),
            )
        ),
        tick_s=0.05,
    )
    ticks: list[float] = []
    engine.tick = _timed(engine.tick, ticks)
    thread = threading.Thread(target=engine.run, name="engine-under-drill", daemon=True)
    notifier = Notifier(
        db_path,
        clock,
        poll_s=0.05,
        retry_base_s=10,
        retry_max_s=60,
        timeout_s=1.0,
        attempt_cap_s=2.0,
        throttle_s=0.0,
        max_failures=3,
    )
    thread.start()
    slow_rounds: list[tuple[float, int]] = []  # (seconds a notifier round took, engine ticks meanwhile)

    def minutes(n: float, step_s: int = 10) -> None:
        """Simulated time passes in steps; at each the engine (its own thread, ticking every
        50 ms) notices, then the notifier does its round here, as its thread would."""
        for _ in range(int(n * 60 / step_s)):
            clock.advance(timedelta(seconds=step_s))
            engine.wake()
            time.sleep(0.1)
            before, start = len(ticks), time.monotonic()
            notifier.run_once(clock.now())
            took = time.monotonic() - start
            if took > 0.5:
                slow_rounds.append((took, len(ticks) - before))

    try:
        minutes(dead_minutes)
        dead = rows(
            db_path,
            "SELECT a.event, d.outcome, d.error FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE a.kind = 'failed'",
        )
        failed = Counter(r["event"] for r in dead if r["outcome"] == "failed")
        for event in EVENTS:
            assert failed[event] >= 3, f"{event}: only {failed[event]} failed attempt(s) recorded"
        assert not [r for r in dead if r["outcome"] == "sent"], "a dead target took an alert"
        errors = {r["event"]: r["error"] for r in dead if r["outcome"] == "failed"}
        assert all(errors[e] for e in EVENTS), errors
        assert rows(db_path, "SELECT 1 FROM alerts WHERE kind = 'delivery'"), "no delivery alert for the dead routes"
        assert good.wait_for(1, timeout_s=10), "the driver's route never heard of the dead ones"
        pace = list(ticks)

        # the targets come back
        refused.start()
        hanging.delay_s = 0.0
        error500.status = 200
        _request(db_path, "late-to-refused")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            minutes(0.5)
            waiting = rows(db_path, "SELECT id FROM alerts WHERE kind = 'failed' AND delivered_at IS NULL")
            late = rows(db_path, "SELECT 1 FROM alerts WHERE kind = 'failed' AND event = 'late-to-refused'")
            if not waiting and late:
                break
    finally:
        engine.stop()
        thread.join(15)
        notifier.stop()
        for receiver in (good, hanging, error500, refused):
            receiver.stop()

    alerts = rows(db_path, "SELECT * FROM alerts WHERE kind = 'failed' ORDER BY id")
    assert {a["event"] for a in alerts} == {*EVENTS, "late-to-refused"}
    undelivered = [a["event"] for a in alerts if not a["delivered_at"]]
    assert not undelivered, f"never delivered after the targets came back: {undelivered}"
    deliveries = rows(db_path, "SELECT * FROM deliveries ORDER BY id")
    sent = Counter((d["alert_id"], d["page"], d["route"], d["target"]) for d in deliveries if d["outcome"] == "sent")
    assert max(sent.values()) == 1, f"sent twice for one page: {[k for k, n in sent.items() if n > 1]}"
    for alert in alerts:
        mine = [d for d in deliveries if d["alert_id"] == alert["id"]]
        assert alert["attempts"] == len(mine), (alert["event"], alert["attempts"], len(mine))
    # what the receivers saw: one message per sent page (the hanging one may also have taken
    # messages whose attempt had already timed out: the sender could not know, and retried)
    for receiver, events in ((refused, ("to-refused", "late-to-refused")), (error500, ("to-500",))):
        got = Counter(_event_of(p.body) for p in receiver.posts)
        for event in events:
            pages = sum(
                n for (aid, _, _, _), n in sent.items() if any(a["id"] == aid and a["event"] == event for a in alerts)
            )
            assert got[event] == pages, (event, got[event], pages)
    resolved = rows(db_path, "SELECT status FROM alerts WHERE kind = 'delivery'")
    assert resolved and all(r["status"] == "resolved" for r in resolved), resolved
    slowest = max(pace)
    assert slowest < 1.0, f"an engine tick took {slowest:.2f} s while targets hung"
    assert slow_rounds, "no notifier round waited on the hanging target"
    for took, ticked in slow_rounds:  # ticking every 50 ms, through each hanging round
        assert ticked >= took / 0.05 / 3, f"{ticked} engine ticks during a {took:.1f} s notifier round"
    REPORTS.append(
        f"dead and slow alert targets ({dead_minutes} simulated minutes dead): {len(pace)} engine ticks, "
        f"median {statistics.median(pace) * 1000:.1f} ms, slowest {slowest * 1000:.0f} ms, "
        f"{sum(n for _, n in slow_rounds)} of them during {len(slow_rounds)} notifier rounds stuck on a target; "
        f"{sum(1 for d in deliveries if d['outcome'] == 'failed')} failed attempts recorded, "
        f"{sum(sent.values())} sent, all {len(alerts)} failure alerts delivered, none twice"
    )


def _request(db: Path, event: str) -> None:
    from tests.drills.common import connect, insert_request

    conn = connect(db)
    insert_request(conn, "trigger", event, by="drill")
    conn.close()


def test_dead_and_slow_alert_targets_short(engine_factory, store: Store, clock: FakeClock, db_path: Path) -> None:
    _drill(engine_factory, store, clock, db_path, dead_minutes=3)


@pytest.mark.long
@pytest.mark.timeout(900)
def test_dead_and_slow_alert_targets_long(engine_factory, store: Store, clock: FakeClock, db_path: Path) -> None:
    _drill(engine_factory, store, clock, db_path, dead_minutes=30)
