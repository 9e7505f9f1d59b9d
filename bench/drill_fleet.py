"""The drill's moving parts: a PostgreSQL server, the definitions (bench/drill_workload.py),
engines as real processes, each in a working directory of its own and naming the database in
another of libpq's forms (a URI without an authority, a key=value string, a URI with one)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.drill_workload import workload
from evman.engine.running.procs import parent_pid
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


@dataclass
class Slot:
    """One engine place: the process in it now, and the pids it had."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    stopped: bool = False
    """SIGSTOPped now (a fault in progress)."""


class Fleet:
    """A server, a database with the workload loaded, and N engine slots."""

    def __init__(self, root: Path, *, engines: int, tick_s: float, grace_s: float = 2.0) -> None:
        self.root = root
        self.tick_s = tick_s
        self.grace_s = grace_s
        # its own folder under /tmp (the server user must reach it); commits are synchronous:
        # a crash of the server must lose nothing it said was committed, as a real server's
        self.server = PgServer(options="-c synchronous_commit=on")
        self.slots = [Slot(f"e{i}") for i in range(engines)]
        self.log = root / "ledger.log"
        self.engine_log = root / "engines.log"
        self.state = root / "state"
        """$XDG_STATE_HOME of every engine: the same user's on one host (where run logs go)."""
        self.dsn = ""
        self.fleet_starts = 0
        """Engines started while no other engine ran (and was not stopped): @reboot's due count."""

    def start(self, *, roots: int, chains: int) -> None:
        self.server.start()
        self.dsn = self.server.create_database("drill")
        defs = self.root / "drill.toml"
        defs.write_text(workload(self.log, roots=roots, chains=chains))
        self.log.touch()
        done = subprocess.run(
            evman_argv("load", str(defs), "--db", self.dsn), capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"evman load failed: {done.stderr.strip()}")
        self.sql(AUDIT_SQL)
        self.fleet_starts = 1  # the engines start together: one fleet start (they join in turn)
        for slot in self.slots:
            self.start_engine(slot, fleet_start=False)

    def url_of(self, slot: Slot) -> str:
        """The database as this slot names it: e0 a URI without authority, e1 a key=value
        string, the others a URI with one (user@)."""
        sock = self.server.socket_dir
        forms = {"e0": f"postgresql:///drill?host={sock}&user=evman", "e1": f"host={sock} dbname=drill user=evman"}
        return forms.get(slot.name, self.dsn)

    def sql(self, script: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(script)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    # -- engines ------------------------------------------------------------------

    def start_engine(self, slot: Slot, *, fleet_start: bool | None = None) -> None:
        """`evman --no-ui` in the slot's own working directory; run logs where evman puts them
        by default for a fleet (the state folder every engine of the host agrees on). A fleet
        start when no other engine runs (unless `fleet_start` says)."""
        if fleet_start if fleet_start is not None else not self.others_running(slot):
            self.fleet_starts += 1
        cwd = self.root / slot.name
        cwd.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "EVMAN_LOGS_DIR"}
        env["XDG_STATE_HOME"] = str(self.state)
        argv = evman_argv(
            "--no-ui", "--db", self.url_of(slot), "--tick", str(self.tick_s), "--grace", str(self.grace_s)
        )
        with open(self.engine_log, "ab") as out:
            slot.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        slot.pids.append(slot.proc.pid)
        slot.stopped = False

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
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            slot.stopped = sig is signal.SIGSTOP

    def machine_dies(self, slot: Slot) -> tuple[list[int], float]:
        """SIGKILL the slot's engine with everything it runs, at once: its supervisor and its
        commands, and the commands of the runs it adopted (found in the database; they run under
        an earlier engine's supervisor, which lives on and records how they ended). The
        commands' pids, killed, and the time (Unix seconds) when all were stopped: the last
        moment they could write a ledger line, taken after the stops, not before the look for
        them (a command whose start line came between the two ended before it began)."""
        assert slot.proc is not None
        engine = slot.proc.pid
        commands = [
            int(r[0])
            for r in self.query(
                "SELECT r.pid FROM runs r JOIN engines e ON e.id = r.engine_id WHERE e.pid = %s "
                "AND e.taken_over_at IS NULL AND r.state = 'running' AND r.pid IS NOT NULL",
                (engine,),
            )
        ]
        frozen: set[int] = set()
        while found := {engine, *_descendants(engine)} - frozen:  # a supervisor mid-spawn adds one
            for pid in found:
                _signal(pid, signal.SIGSTOP)
            frozen |= found
        for pid in commands:
            _signal(pid, signal.SIGSTOP, group=True)
        stopped_at = time.time()
        for pid in frozen:  # all frozen first: none saw another die, as when a machine stops
            _signal(pid, signal.SIGKILL)
        for pid in commands:
            _signal(pid, signal.SIGKILL, group=True)
        return commands, stopped_at

    def others_running(self, slot: Slot) -> list[Slot]:
        """The other slots whose engine runs: its process alive and not stopped, and joined (an
        engines row, live, not taken over). While the server is down: alive and not stopped."""
        alive = [s for s in self.slots if s is not slot and s.proc is not None and s.proc.poll() is None]
        alive = [s for s in alive if not s.stopped]
        try:
            joined = {
                int(r[0]) for r in self.query("SELECT pid FROM engines WHERE state = 'live' AND taken_over_at IS NULL")
            }
        except Exception:  # the server is down (a crash fault): the engines that ran before still run
            return alive
        return [s for s in alive if s.proc is not None and s.proc.pid in joined]

    def wait_joined(self, slot: Slot, timeout_s: float) -> bool:
        """Until the slot's engine has its engines row (it runs), or it ended; False on timeout."""
        assert slot.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and slot.proc.poll() is None:
            try:
                if self.query("SELECT 1 FROM engines WHERE pid = %s", (slot.proc.pid,)):
                    return True
            except Exception:  # the server is restarting: look again
                pass
            time.sleep(0.1)
        return False

    def stop_all(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every engine (once it runs) and wait: each must stop by itself, with status 0."""
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                self.wait_joined(slot, 10)
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

    def dump(self, folder: Path) -> None:
        """The tables as CSV, for reading what happened after the server is gone."""
        import psycopg

        folder.mkdir(exist_ok=True)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for table in ("runs", "alerts", "requests", "engines", "request_keys"):
                with (
                    open(folder / f"{table}.csv", "wb") as out,
                    conn.cursor().copy(f"COPY {table} TO STDOUT WITH CSV HEADER") as copy,
                ):
                    for chunk in copy:
                        out.write(chunk)

    def close(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                if slot.stopped:
                    os.kill(slot.proc.pid, signal.SIGCONT)
                slot.proc.kill()
                slot.proc.wait()
        self.server.stop()


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc: children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (parent := parent_pid(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: signal.Signals, *, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
