"""A database outage longer than the lease is not a fleet start (issue 24): PostgreSQL crashes
(`pg_ctl stop -m immediate`), stays down past every engine's lease, and comes back; an engine
that joins before the live ones have renewed neither queues the @reboot events again nor
fences the others. The real server of the session is crashed and started again."""

from __future__ import annotations

import time
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from tests.fleet.common import LEASE_S, Make, load
from tests.outside import rows
from tests.pgserver import PgServer

REBOOT = """
[defaults]
timezone = "UTC"
[[event]]
name = "warm"
call = "os:getcwd"
schedule = "@reboot"
"""


def engine_rows(dsn: str) -> dict[int, dict[str, object]]:
    return {int(r["id"]): r for r in rows(dsn, "SELECT id, state, taken_over_by FROM engines")}


def ticking(engines: tuple[Engine, ...], for_s: float) -> None:
    """Each engine ticks every 0.05 s or so, as running engines do (the first tick after the
    outage fails on its cut connection, the next reconnects)."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        for engine in engines:
            engine.tick()
        time.sleep(0.05)


def test_an_outage_longer_than_the_lease_queues_no_reboot_and_fences_no_one(
    make: Make, pg_server: PgServer, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, REBOOT, tmp_path, clock)
    a, b = make(host="app1"), make(host="app2")
    a.settle(clock.now())
    assert [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs")] == ["succeeded"]
    pg_server.crash(down_s=LEASE_S + 0.5)  # every lease runs out while the server is down
    c = make(host="app3")  # joins at once, before a and b renewed
    assert not c.fleet.starts_fleet  # type: ignore[union-attr]
    ticking((a, b, c), 2 * LEASE_S)  # a and b renew within a tick of the server's return
    assert (a.fenced, b.fenced, c.fenced) == (None, None, None)
    assert {r["state"] for r in engine_rows(pg_dsn).values()} == {"live"}
    assert [r["triggered_by"] for r in rows(pg_dsn, "SELECT triggered_by FROM runs")] == ["engine start"]


def test_an_engine_joining_only_dead_engines_after_an_outage_starts_the_fleet(
    make: Make, pg_server: PgServer, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """The whole fleet died with the database (a power cut): the first engine back waits a lease
    for the others to renew, they do not, it takes them over and queues @reboot then, once."""
    load(pg_dsn, REBOOT, tmp_path, clock)
    a = make(host="app1")
    a.settle(clock.now())
    a.executors.shutdown(wait_s=0)  # a dies with the machine: no tick, no stop
    a.fleet.stop_listening()  # type: ignore[union-attr]
    pg_server.crash(down_s=0.1)
    time.sleep(LEASE_S)
    c = make(host="app3")
    ticking((c,), LEASE_S / 2)
    assert len(rows(pg_dsn, "SELECT id FROM runs")) == 1, "not before the others had a lease to renew"
    ticking((c,), LEASE_S)
    c.settle(clock.now())
    assert [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs ORDER BY id")] == ["succeeded", "succeeded"]
    assert engine_rows(pg_dsn)[a.fleet.token.engine_id]["taken_over_by"] == c.fleet.token.engine_id  # type: ignore[union-attr]
