"""An engine SIGSTOPped inside its tick's claim transaction (due event rows locked FOR UPDATE,
the transaction open on the server): the survivor is not held up behind it. The server ends the
stopped engine's transaction after a lease (idle_in_transaction_session_timeout), the survivor
takes the engine over and makes the occurrences of the events it had locked while it is still
stopped; after SIGCONT the stopped engine finds itself fenced: exit 3, the reason logged, no
write of its accepted after the takeover. Real `evman --no-ui` processes, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.drill_fleet import AUDIT_SQL
from tests.outside import ROOT, evman_argv, wait_until

pytest.importorskip("psycopg")

TICK_S = 0.5
LEASE_S = 3 * TICK_S
EVENTS = 40


def _workload() -> str:
    out = ["[defaults]", 'timezone = "UTC"', ""]
    for i in range(EVENTS):
        out += [
            "[[event]]",
            f'name = "e{i:02d}"',
            'call = "builtins:len"',
            'schedule = "every 1 seconds"',
            'concurrency = "queue"',
            'misfire = "all"',
            "",
        ]
    return "\n".join(out)


class Db:
    """A plain autocommit connection, as a watching program would have."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def one(self, sql: str, *params: Any) -> Any:
        found = self.all(sql, *params)
        return found[0][0] if found else None


@pytest.fixture
def engines(pg_dsn: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    defs = tmp_path / "defs.toml"
    defs.write_text(_workload())
    subprocess.run(
        evman_argv("load", str(defs), "--db", pg_dsn), check=True, cwd=ROOT, capture_output=True, timeout=120
    )
    env = {**os.environ, "EVMAN_LOGS_DIR": str(tmp_path / "logs")}
    procs = []
    for i in range(2):
        with open(tmp_path / f"engine{i}.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    evman_argv("--no-ui", "--db", pg_dsn, "--tick", str(TICK_S)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                    env=env,
                )
            )
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(10)


def _stop_inside_a_claim(db: Db, procs: list[subprocess.Popen[bytes]]) -> tuple[subprocess.Popen[bytes], datetime]:
    """SIGSTOP whichever engine is seen right after its claim of due events, and keep it stopped
    only if its transaction is still open with rows locked (else SIGCONT and look again)."""
    apps = {f"evman pid {p.pid}": p for p in procs}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for app, xact in db.all(
            "SELECT application_name, xact_start FROM pg_stat_activity WHERE application_name = ANY(%s) "
            "AND state = 'idle in transaction' AND backend_xid IS NOT NULL "
            "AND query LIKE '%%FROM events%%FOR UPDATE SKIP LOCKED'",
            list(apps),
        ):
            proc = apps[app]
            os.kill(proc.pid, signal.SIGSTOP)
            stopped_at = datetime.now(UTC)
            time.sleep(0.05)
            still = db.one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND "
                "state = 'idle in transaction' AND xact_start = %s",
                app,
                xact,
            )
            if still:
                return proc, stopped_at
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.001)
    raise AssertionError("never saw an engine inside its claim of due events")


def test_an_engine_stopped_inside_its_claim_holds_no_one_up_and_is_fenced(
    engines: list[subprocess.Popen[bytes]], pg_dsn: str, tmp_path: Path
) -> None:
    db = Db(pg_dsn)
    db.conn.execute(AUDIT_SQL)
    wait_until(
        lambda: db.one("SELECT count(*) FROM engines WHERE state = 'live'") == 2,
        timeout=60,
        what="both engines to join",
    )
    wait_until(
        lambda: db.one("SELECT count(DISTINCT engine_id) FROM runs") == 2, timeout=30, what="both engines to make runs"
    )
    victim, stopped_at = _stop_inside_a_claim(db, engines)
    app = f"evman pid {victim.pid}"
    victim_id, survivor_id = db.all(
        "SELECT e.id, o.id FROM engines e, engines o WHERE e.pid = %s AND o.pid <> e.pid AND o.state = 'live'",
        victim.pid,
    )[0]
    since = stopped_at.isoformat()

    # while it is still stopped: it is taken over, the survivor makes occurrences of every event
    # after the stop (those it had locked too), and the server has ended its transaction
    taken = wait_until(
        lambda: db.one(
            "SELECT taken_over_at FROM engines WHERE id = %s AND taken_over_by = %s", victim_id, survivor_id
        ),
        timeout=10 * LEASE_S,
        what="the survivor to take the stopped engine over",
    )
    made = wait_until(
        lambda: (lambda n: n if n == EVENTS else None)(
            db.one(
                "SELECT count(DISTINCT event) FROM runs WHERE engine_id = %s AND scheduled_for > %s", survivor_id, since
            )
        ),
        timeout=10 * LEASE_S,
        what="the survivor to make an occurrence of every event after the stop",
    )
    assert made == EVENTS
    wait_until(
        lambda: (
            not db.one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'idle in transaction'",
                app,
            )
        ),
        timeout=10 * LEASE_S,
        what="the server to end the stopped engine's transaction",
    )
    assert victim.poll() is None, "still stopped"

    os.kill(victim.pid, signal.SIGCONT)
    assert victim.wait(30) == 3
    log = (tmp_path / f"engine{engines.index(victim)}.log").read_text()
    assert "FENCED" in log and f"taken over by engine {survivor_id}" in log
    assert db.one("SELECT count(*) FROM drill_audit WHERE app = %s AND at > %s", app, taken) == 0
    assert db.one("SELECT state FROM engines WHERE id = %s", victim_id) == "fenced"
    assert db.one("SELECT state FROM engines WHERE id = %s", survivor_id) == "live"
