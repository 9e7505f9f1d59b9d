"""Several notifiers on one PostgreSQL database (one per engine): each due page attempt (the
first page, a reminder, the escalation, the retry after a failed delivery) goes out once across
them, and the alerts a notifier claimed and then died with go out from another after the claim's
lease. Real PostgreSQL, a real json:// receiver on 127.0.0.1 that can hold a POST at a gate (so
rounds overlap for certain, not by timing), a real notifier process killed mid-send, FakeClock."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.paging.notifier import Attempt, Notifier
from evman.engine.store import open_store
from tests.outside import ROOT, rows, wait_until
from tests.receivers import HttpReceiver

START = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)
CLAIM_S = 60.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def alert(pg_dsn: str, http: HttpReceiver, clock: FakeClock, tmp_path: Path) -> int:
    return setup(pg_dsn, http, clock, tmp_path)


@pytest.fixture
def notifiers(pg_dsn: str, clock: FakeClock, alert: int) -> Iterator[list[Notifier]]:
    """Three notifiers, each on its own connection, as three engines would run them."""
    made = [
        Notifier(pg_dsn, clock, timeout_s=5.0, attempt_cap_s=10.0, throttle_s=0.0, claim_s=CLAIM_S) for _ in range(3)
    ]
    yield made
    for notifier in made:
        notifier.stop(wait_s=1.0)


def setup(dsn: str, http: HttpReceiver, clock: FakeClock, tmp_path: Path) -> int:
    """Routes ops (escalating to lead after 20 min, reminders every 30 min) and one failed alert."""
    text = textwrap.dedent(f"""
        [defaults]
        timezone = "UTC"
        driver = "ops"
        repeat = "30m"
        [routes]
        ops = {{ urls = ["{http.url("/ops")}"], escalate_to = "lead", escalate_after = "20m" }}
        lead = ["{http.url("/lead")}"]
        [[event]]
        name = "nightly"
        run = "true"
    """)
    store = open_store(dsn)
    try:
        defs = parse_definitions(
            text, source=str(tmp_path / "defs.toml"), base_dir=tmp_path, known_events=store.event_names()
        )
        catalog.save(store, defs, now=clock.now())
        with store.transaction():
            alert_id = store.value(
                "INSERT INTO alerts (kind, event, message, created_at, updated_at) "
                "VALUES ('failed', 'nightly', 'nightly failed.', ?, ?) RETURNING id",
                (iso(clock.now()), iso(clock.now())),
            )
    finally:
        store.close()
    return int(alert_id)


def overlapping(
    first: Notifier, others: list[Notifier], http: HttpReceiver, clock: FakeClock
) -> tuple[list[Attempt], list[Attempt]]:
    """`first`'s round held mid-send at the receiver's gate while the others run theirs: what
    the first attempted, and what the others did meanwhile."""
    http.gate = threading.Event()
    arrived = http.arrived
    result: list[list[Attempt]] = []
    worker = threading.Thread(target=lambda: result.append(first.run_once(clock.now())))
    worker.start()
    try:
        assert http.wait_arrived(arrived + 1), "the first notifier sent nothing"
        meanwhile = [attempt for other in others for attempt in other.run_once(clock.now())]
    finally:
        http.gate.set()
        worker.join(30)
        http.gate = None
    assert not worker.is_alive() and result
    return result[0], meanwhile


def paths(http: HttpReceiver) -> Counter[str]:
    return Counter(post.path for post in http.posts)


def test_first_page_reminders_and_escalation_go_out_once_across_three_notifiers(
    pg_dsn: str, alert: int, notifiers: list[Notifier], http: HttpReceiver, clock: FakeClock
) -> None:
    a, b, c = notifiers

    sent, meanwhile = overlapping(a, [b, c], http, clock)
    assert [x.outcome for x in sent] == ["sent"] and meanwhile == []
    assert paths(http) == {"/ops": 1}

    clock.advance(timedelta(minutes=20))  # nobody acknowledged: escalation to lead, and a reminder
    sent, meanwhile = overlapping(b, [c, a], http, clock)
    assert sorted(x.route or "" for x in sent) == ["lead", "ops"] and meanwhile == []
    assert paths(http) == {"/ops": 2, "/lead": 1}

    clock.advance(timedelta(minutes=30))  # the next reminder, to both routes now
    sent, meanwhile = overlapping(c, [a, b], http, clock)
    assert len(sent) == 2 and meanwhile == []
    assert paths(http) == {"/ops": 3, "/lead": 2}
    assert all(n.run_once(clock.now()) == [] for n in notifiers)  # nothing due: nothing claimed left over
    got = rows(pg_dsn, "SELECT page, route, outcome FROM deliveries WHERE alert_id = ? ORDER BY id", (alert,))
    assert [(r["page"], r["route"], r["outcome"]) for r in got] == [
        (1, "ops", "sent"),
        (2, "ops", "sent"),
        (2, "lead", "sent"),
        (3, "ops", "sent"),
        (3, "lead", "sent"),
    ]


def test_a_retry_after_a_failed_delivery_goes_out_once(
    pg_dsn: str, alert: int, notifiers: list[Notifier], http: HttpReceiver, clock: FakeClock
) -> None:
    a, b, c = notifiers
    http.status = 500
    failed, meanwhile = overlapping(a, [b, c], http, clock)
    assert [x.outcome for x in failed] == ["failed"] and meanwhile == []

    http.status = 200
    clock.advance(timedelta(seconds=29))
    assert all(n.run_once(clock.now()) == [] for n in notifiers)  # backoff: due after 30 s
    clock.advance(timedelta(seconds=1))
    sent, meanwhile = overlapping(c, [a, b], http, clock)
    assert [x.outcome for x in sent] == ["sent"] and meanwhile == []
    assert paths(http) == {"/ops": 1}
    got = rows(pg_dsn, "SELECT outcome FROM deliveries WHERE alert_id = ? ORDER BY id", (alert,))
    assert [r["outcome"] for r in got] == ["failed", "sent"]


DYING = """
import sys
from evman.engine.paging.notifier import Notifier
from evman.engine.clock import FakeClock, parse_iso
clock = FakeClock(parse_iso(sys.argv[2]))
Notifier(sys.argv[1], clock, timeout_s=60, attempt_cap_s=60, throttle_s=0, claim_s=float(sys.argv[3])).run_once(clock.now())
"""


def test_alerts_a_notifier_died_with_mid_send_go_out_from_another_after_the_claim(
    pg_dsn: str, alert: int, notifiers: list[Notifier], http: HttpReceiver, clock: FakeClock
) -> None:
    http.gate = threading.Event()  # never opened: the dying notifier's POST hangs there
    proc = subprocess.Popen([sys.executable, "-c", DYING, pg_dsn, iso(clock.now()), str(CLAIM_S)], cwd=ROOT)
    try:
        assert http.wait_arrived(1, timeout_s=60), "the notifier process sent nothing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    http.gate = None  # the dead one's POST stays held (never answered, never recorded)
    (claimed,) = rows(pg_dsn, "SELECT next_attempt_at, pending FROM alerts WHERE id = ?", (alert,))
    assert claimed == {"next_attempt_at": iso(START + timedelta(seconds=CLAIM_S)), "pending": 1}

    survivor = notifiers[0]
    assert survivor.run_once(clock.now()) == []
    clock.advance(timedelta(seconds=CLAIM_S - 1))
    assert all(n.run_once(clock.now()) == [] for n in notifiers)
    clock.advance(timedelta(seconds=1))  # the claim ran out: the alert is anyone's again
    sent: list[Any] = [x for n in notifiers for x in n.run_once(clock.now())]
    assert [x.outcome for x in sent] == ["sent"] and len(http.posts) == 1
    got = rows(pg_dsn, "SELECT outcome, page FROM deliveries WHERE alert_id = ?", (alert,))
    assert got == [{"outcome": "sent", "page": 1}]


def test_a_send_that_outlasts_the_lease_keeps_its_claim(
    pg_dsn: str, alert: int, http: HttpReceiver, clock: FakeClock
) -> None:
    """The claim is renewed while the round waits for its targets, so a slow target does not
    hand the page to another notifier at the end of the first lease."""
    short = Notifier(pg_dsn, clock, timeout_s=30.0, attempt_cap_s=30.0, throttle_s=0.0, claim_s=0.3)
    other = Notifier(pg_dsn, clock, timeout_s=5.0, attempt_cap_s=10.0, throttle_s=0.0, claim_s=0.3)
    http.gate = threading.Event()
    worker = threading.Thread(target=short.run_once, args=(clock.now(),))
    worker.start()
    try:
        assert http.wait_arrived(1)
        clock.advance(timedelta(seconds=10))  # far past the first lease, on the notifiers' clock
        renewed = iso(clock.now() + timedelta(seconds=0.3))
        wait_until(
            lambda: (
                rows(pg_dsn, "SELECT next_attempt_at FROM alerts WHERE id = ?", (alert,))
                == [{"next_attempt_at": renewed}]
            ),
            what="the claim to be renewed",
        )
        assert other.run_once(clock.now()) == []
    finally:
        http.gate.set()
        worker.join(30)
        short.stop(wait_s=1.0)
        other.stop(wait_s=1.0)
    assert len(http.posts) == 1
    (row,) = rows(pg_dsn, "SELECT pages, next_attempt_at FROM alerts WHERE id = ?", (alert,))
    assert row == {"pages": 1, "next_attempt_at": iso(START + timedelta(minutes=20))}
