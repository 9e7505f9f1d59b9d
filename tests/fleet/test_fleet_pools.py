"""A pool of 2 across a fleet of real `evman --no-ui` engines on one PostgreSQL database, under
faults: an engine holding a slot is SIGKILLed, another is SIGSTOPped past its lease (taken over,
then fenced when it goes on). The commands count themselves under a file lock: never more than 2
run at once; a sampler of the database never sees 3 holders; the fenced engine writes nothing
after its takeover, so it holds no slot; the slots of the engines that died pass on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.drill_fleet import AUDIT_SQL
from tests.fleet.common import fail_next_apply
from tests.outside import ROOT, evman_argv, wait_until

pytest.importorskip("psycopg")

TICK_S = 0.2
LEASE_S = 1.0
EVENTS = 10
HOLDERS = "SELECT count(*) FROM runs WHERE state = 'running' AND pools LIKE '%%warehouse=%%'"


def workload(counter: Path) -> str:
    job = f"{sys.executable} {ROOT / 'tests' / 'fleet' / 'pool_job.py'} {counter} 0.4"
    out = ['[defaults]\ntimezone = "UTC"\n\n[pools]\nwarehouse = 2\n']
    for i in range(EVENTS):
        out.append(f'[[event]]\nname = "load-{i}"\nrun = "{job}"\nschedule = "every 2 seconds"\nuses = ["warehouse"]\n')
    return "\n".join(out)


class Db:
    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)

    def one(self, sql: str, *params: Any) -> Any:
        found = self.conn.execute(sql, params).fetchall()
        return found[0][0] if found else None


class Fleet:
    def __init__(self, dsn: str, tmp: Path) -> None:
        self.dsn, self.tmp = dsn, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "EVMAN_LOGS_DIR": str(tmp / "logs")}

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"engine{len(self.procs)}.log", "wb") as out:
            proc = subprocess.Popen(
                evman_argv("--no-ui", "--db", self.dsn, "--tick", str(TICK_S)),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                env=self.env,
            )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def fleet(pg_dsn: str, tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(pg_dsn, tmp_path)
    yield made
    made.stop()


class Sampler(threading.Thread):
    """Reads the number of holders as any program would, as often as it can."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.db, self.most, self.looks = Db(dsn), 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.most = max(self.most, int(self.db.one(HOLDERS)))
            self.looks += 1
            time.sleep(0.005)


def holder_engine(db: Db, procs: list[subprocess.Popen[bytes]], not_pid: int | None = None) -> subprocess.Popen[bytes]:
    """An engine process that owns a run holding a slot now."""
    by_pid = {p.pid: p for p in procs if p.poll() is None and p.pid != not_pid}

    def find() -> subprocess.Popen[bytes] | None:
        pid = db.one(
            "SELECT e.pid FROM runs r JOIN engines e ON e.id = r.engine_id WHERE r.state = 'running' "
            "AND r.pools IS NOT NULL AND e.state = 'live' AND e.pid = ANY(%s) LIMIT 1",
            list(by_pid),
        )
        return None if pid is None else by_pid[int(pid)]

    return wait_until(find, timeout=30, what="an engine holding a slot")


def test_a_pool_of_2_never_has_3_holders_across_engines_killed_and_stopped(
    fleet: Fleet, pg_dsn: str, tmp_path: Path
) -> None:
    counter = tmp_path / "counter.json"
    defs = tmp_path / "defs.toml"
    defs.write_text(workload(counter))
    subprocess.run(
        evman_argv("load", str(defs), "--db", pg_dsn), check=True, cwd=ROOT, capture_output=True, timeout=120
    )
    db = Db(pg_dsn)
    db.conn.execute(AUDIT_SQL)
    for _ in range(3):
        fleet.start()
    sampler = Sampler(pg_dsn)
    sampler.start()
    done = "SELECT count(*) FROM runs WHERE state = 'succeeded'"
    wait_until(lambda: db.one(done) >= 6, timeout=60, what="runs through the pool")

    killed = holder_engine(db, fleet.procs)
    os.kill(killed.pid, signal.SIGKILL)  # its running command holds a slot: adopted, then it frees
    killed.wait(10)
    wait_until(lambda: db.one("SELECT count(*) FROM engines WHERE state = 'dead'") >= 1, timeout=30, what="takeover")

    stopped = holder_engine(db, fleet.procs, not_pid=killed.pid)
    stopped_id = db.one("SELECT id FROM engines WHERE pid = %s AND state = 'live'", stopped.pid)
    os.kill(stopped.pid, signal.SIGSTOP)
    fleet.start()  # the fleet keeps two live engines while one is stopped
    taken = wait_until(
        lambda: db.one("SELECT taken_over_at FROM engines WHERE id = %s", stopped_id),
        timeout=30,
        what="the stop's takeover",
    )
    before = db.one(done)
    wait_until(lambda: db.one(done) >= before + 6, timeout=60, what="runs after the faults")
    os.kill(stopped.pid, signal.SIGCONT)
    assert stopped.wait(30) == 3  # fenced

    sampler.done.set()
    sampler.join(10)
    fleet.stop()
    state = json.loads(counter.read_text())
    assert state["peak"] == 2, state  # the pool was full, and never more than full
    assert sampler.most == 2 and sampler.looks > 100
    app = f"evman pid {stopped.pid}"
    assert db.one("SELECT count(*) FROM drill_audit WHERE app = %s AND at > %s", app, taken) == 0
    assert db.one(HOLDERS) == 0 or db.one("SELECT count(*) FROM engines WHERE state = 'live'") > 0


LOCK = """
    [pools]
    lock = 1
    [[event]]
    name = "x"
    run = "sleep 30"
    uses = ["lock"]
    [[event]]
    name = "y"
    run = "sleep 30"
    uses = ["lock"]
    priority = 10
"""


def test_a_start_whose_flush_failed_is_decided_again_not_written_later(
    make: Any, pg_dsn: str, clock: Any, tmp_path: Path
) -> None:
    """The slot engine a gave under its lock went with the failed transaction: when a writes its
    tick again, the run waits for the slot that engine b gave meanwhile, instead of a second holder."""
    from evman.engine.store import StoreError
    from tests.fleet.common import load
    from tests.outside import rows

    def ask(verb: str, target: str) -> None:
        Db(pg_dsn).conn.execute(
            "INSERT INTO requests (verb, target, requested_by) VALUES (%s, %s, 'test')", (verb, target)
        )

    load(pg_dsn, LOCK, tmp_path, clock)
    a, b = make(), make()
    ask("hold", "x")
    a.tick()
    ask("trigger", "x")
    a.tick()  # run x waits, held
    (x,) = rows(pg_dsn, "SELECT id, state FROM runs WHERE event = 'x'")
    failed = fail_next_apply(a)
    ask("release", "x")
    with pytest.raises(StoreError):
        a.tick()  # x is ready: a gives it the slot, and its flush fails
    assert failed and rows(pg_dsn, "SELECT state FROM runs WHERE id = ?", (x["id"],))[0]["state"] == "waiting"
    ask("trigger", "y")
    b.tick()  # b takes the free slot for y (priority 10: ahead of x in line)
    assert rows(pg_dsn, "SELECT state FROM runs WHERE event = 'y'")[0]["state"] == "running"
    a.tick()  # a writes its tick again: x is decided anew
    holders = rows(pg_dsn, "SELECT event FROM runs WHERE state = 'running' AND pools IS NOT NULL")
    assert [h["event"] for h in holders] == ["y"]
    row = rows(pg_dsn, "SELECT state, waiting_reason FROM runs WHERE id = ?", (x["id"],))[0]
    assert row["state"] == "waiting" and row["waiting_reason"].startswith("waiting for pool lock (1 of 1 held by y run")
