"""The drill's moving parts: a PostgreSQL server, the definitions, engines as real processes.

Every command of the workload appends `event,occurrence,run,engine,pid` to one log opened with
O_APPEND (the shell's >>), so the drill sees what really ran, whatever the database says."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.outside import ROOT, evman_argv
from tests.pgserver import PgServer

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS drill_audit (
    at TEXT NOT NULL, app TEXT, op TEXT NOT NULL, run_id BIGINT, state TEXT, engine_id BIGINT);
CREATE OR REPLACE FUNCTION drill_audit() RETURNS trigger AS $$
BEGIN
    INSERT INTO drill_audit VALUES (
        to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        current_setting('application_name'), TG_OP, NEW.id, NEW.state, NEW.engine_id);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS drill_audit ON runs;
CREATE TRIGGER drill_audit AFTER INSERT OR UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION drill_audit();
"""
"""Every committed run write with the connection that made it: a write by a fenced engine
that PostgreSQL accepted would show here with a time after the engine's takeover."""

LINE = 'printf "%s,%s,%s,%s,%s\\n" "$EVMAN_EVENT" "$EVMAN_SCHEDULED_FOR" "$EVMAN_RUN_ID" "$PPID" "$$"'


def workload(log: Path, *, roots: int, chains: int, every_s: int, work_s: float) -> str:
    """`roots` events every `every_s` seconds; the first `chains` of them start a follower,
    which starts another. Queued concurrency and misfire = "all": an occurrence is never
    skipped for an earlier one still running, nor folded into a later one when it is made
    late (a fault can hold a due event for a lease), so every occurrence must run."""
    out = ["[defaults]", 'timezone = "UTC"', ""]
    command = f"{LINE} >> {log}; sleep {work_s}"

    def event(name: str, **keys: str) -> None:
        out.extend(
            [
                "[[event]]",
                f'name = "{name}"',
                f"shell = '{command}'",
                'concurrency = "queue"',
                'misfire = "all"',
                *(f"{k} = {v}" for k, v in keys.items()),
                "",
            ]
        )

    for i in range(roots):
        follow = f'["c{i}-1"]' if i < chains else "[]"
        event(f"s{i}", schedule=f'"every {every_s} seconds"', on_success=follow)
        if i < chains:
            event(f"c{i}-1", on_success=f'["c{i}-2"]')
            event(f"c{i}-2")
    return "\n".join(out)


@dataclass
class Slot:
    """One engine place: the process in it now, and the pids it had."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)


class Fleet:
    """A server, a database with the workload loaded, and N engine slots."""

    def __init__(self, root: Path, *, engines: int, tick_s: float, grace_s: float = 2.0) -> None:
        self.root = root
        self.tick_s = tick_s
        self.grace_s = grace_s
        self.server = PgServer()  # its own folder under /tmp: the server user must reach it
        self.slots = [Slot(f"e{i}") for i in range(engines)]
        self.log = root / "executions.log"
        self.engine_log = root / "engines.log"
        self.dsn = ""

    def start(self, *, roots: int, chains: int, every_s: int, work_s: float) -> None:
        self.server.start()
        self.dsn = self.server.create_database("drill")
        defs = self.root / "drill.toml"
        defs.write_text(workload(self.log, roots=roots, chains=chains, every_s=every_s, work_s=work_s))
        self.log.touch()
        done = subprocess.run(
            evman_argv("load", str(defs), "--db", self.dsn), capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"evman load failed: {done.stderr.strip()}")
        self.sql(AUDIT_SQL)
        for slot in self.slots:
            self.start_engine(slot)

    def sql(self, script: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(script)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    # -- engines ------------------------------------------------------------------

    def start_engine(self, slot: Slot) -> None:
        argv = evman_argv("--no-ui", "--db", self.dsn, "--tick", str(self.tick_s), "--grace", str(self.grace_s))
        with open(self.engine_log, "ab") as out:
            slot.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        slot.pids.append(slot.proc.pid)

    def wait_exit(self, slot: Slot, timeout_s: float) -> int | None:
        """The exit status of the slot's engine once it ends, None if it is still running."""
        assert slot.proc is not None
        try:
            return slot.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, slot: Slot, sig: signal.Signals) -> None:
        assert slot.proc is not None
        os.kill(slot.proc.pid, sig)

    def stop_all(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every engine and wait: each must stop by itself, with status 0."""
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                os.kill(slot.proc.pid, signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout_s
        for slot in self.slots:
            if slot.proc is not None:
                codes[slot.name] = self.wait_exit(slot, max(0.1, deadline - time.monotonic()))
                if codes[slot.name] is None:
                    slot.proc.kill()
                    slot.proc.wait()
        return codes

    def close(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.kill()
                slot.proc.wait()
        self.server.stop()
