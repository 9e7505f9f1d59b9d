"""End to end: a slowed chain pages through a real receiver before its deadline, once.

The real engine on a FakeClock runs simulated jobs (bench/simjobs.py) through six nights of
history and then tonight, when `build` runs five times its usual hour; the real notifier
sends through Apprise to an HTTP receiver on 127.0.0.1 (json://)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock, parse_iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier
from evman.engine.store import open_store
from tests.outside import ROOT
from tests.receivers import HttpReceiver

TONIGHT = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
MINUTES = {"fetch": 30, "build": 60, "publish": 20}
DEFS = """
[defaults]
timezone = "UTC"
driver = "ops"
at_risk_margin = "10m"

[routes]
ops = ["{url}"]

[[event]]
name = "fetch"
call = "bench.simjobs:job"
cwd = "{root}"
schedule = "every day at 22:00"
on_success = ["build"]

[[event]]
name = "build"
call = "bench.simjobs:job"
cwd = "{root}"
on_success = ["publish"]

[[event]]
name = "publish"
call = "bench.simjobs:job"
cwd = "{root}"
deadline = "03:00"
"""


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def test_a_slowed_chain_pages_projected_late_before_its_deadline(tmp_path: Path, http: HttpReceiver) -> None:
    db = tmp_path / "e2e.db"
    clock = FakeClock(TONIGHT - timedelta(days=6, hours=1))
    defs = parse_definitions(
        textwrap.dedent(DEFS.format(url=http.url(), root=ROOT)), source=str(tmp_path / "d.toml"), base_dir=tmp_path
    )
    store = open_store(db)
    catalog.save(store, defs, now=clock.now())
    engine = Engine(store, clock=clock, logs_dir=tmp_path / "logs")
    engine.start()
    notifier = Notifier(db, clock, timeout_s=2.0, attempt_cap_s=5.0, throttle_s=0.0)
    nights = {"n": 0}

    def duration(event: str, _attempt: int) -> float:
        wobble = 1 + 0.02 * ((nights["n"] * 7 + len(event)) % 5 - 2)  # within 4 %, repeatable
        slow = 5.0 if event == "build" and clock.now() >= TONIGHT else 1.0
        return MINUTES[event] * 60 * wobble * slow

    sent: list[tuple[datetime, str]] = []

    def deliver(now: datetime) -> None:
        before = len(http.posts)
        notifier.run_once(now)
        sent.extend((now, f"{post.json['title']}\n{post.json['message']}") for post in http.posts[before:])

    try:
        with SimJobs(clock, duration) as sim:
            driver = Driver(engine, sim, step_s=None)
            for night in range(6):
                nights["n"] = night
                driver.run_until(TONIGHT - timedelta(days=5 - night, hours=1))
            assert sent == [], "six ordinary nights page nothing"
            driver.step_s = 60.0
            driver.run_until(DEADLINE, on_tick=deliver)
    finally:
        notifier.stop()
        engine.executors.shutdown(wait_s=0)
    late = [(at, body) for at, body in sent if body.startswith("[evman] projected_late")]
    assert late, f"no projected_late page reached the receiver; got {sent}"
    at, body = late[0]
    # build's history is tight (within 4 %): past it, only the tail says how long it may go on
    assert at < DEADLINE and sent[0][0] <= DEADLINE - timedelta(minutes=30), [(t, b.splitlines()[1]) for t, b in sent]
    assert body.startswith("[evman] projected_late: publish\npublish: ") and "likely to miss 03:00; expected " in body
    assert ", p90 " in body and "path: fetch ✓ → build running " in body and "→ publish\n" in body
    # nobody acknowledges, nothing new happens until the deadline: one page, not one every few minutes
    assert len(late) == 1, [t for t, _ in late]
    assert len(sent) <= 2, [b.splitlines()[0] for _, b in sent]
    risk = [(t, b) for t, b in sent if b.startswith("[evman] at_risk")]
    assert all(t < at and "publish at risk: " in b for t, b in risk)
    alerts = {a["kind"]: a for a in store.alerts(event="publish")}
    assert alerts["projected_late"]["status"] == "open" and alerts["projected_late"]["pages"] == 1
    assert parse_iso(alerts["projected_late"]["delivered_at"]) == at
    store.close()
