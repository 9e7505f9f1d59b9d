"""The several-engines drill: 3 engines on one PostgreSQL, each in its own working directory and
naming the database its own way, twenty-four events (bench/drill_workload.py; four share a pool
of 2), a program writing requests with unique and repeated dedupe keys (bench/drill_requests.py),
and random faults; then what ran, what was lost, what was fenced, how fast work moved, and each
of issue 24's measures and issue 22's (never more holders of the pool than its 2 slots) with
MET or NOT MET.

    uv run python -m bench.drill --faults 200          # the long form (about 15 minutes)
    uv run python -m bench.drill --faults 8            # a smoke run

Faults, one at a time with the fleet running between them: SIGKILL an engine and start it
again; "the machine died": SIGKILL an engine with its supervisor and the commands of its runs;
SIGSTOP one past its lease, then SIGCONT (it must find itself fenced and exit 3, or go on if
no one took it over); pg_terminate_backend on an engine's connections; `pg_ctl restart -m
fast`; PostgreSQL stopped `-m immediate` for longer than a lease and started again, with an
engine killed before and started the moment the server is back (it joins while the others
have not renewed yet); SIGTERM (a graceful stop: exit 0, handed over within a tick) and start
it again."""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.drill_fleet import Fleet, Slot
from bench.drill_measures import Measures, details, measure, read_ledger
from bench.drill_measures import render as render_measures
from bench.drill_report import Fault, Findings, dicts, judge, render
from bench.drill_requests import RequestWriter
from bench.drill_workload import ROOT_EVERY_S

FENCED_EXIT = 3
LEASE_TICKS = 3
FAULT_WEIGHTS = {"kill": 3, "machine": 2, "stop": 2, "terminate": 2, "pg_restart": 1, "pg_crash": 1, "term": 2}


@dataclass(frozen=True)
class Plan:
    faults: int = 200
    engines: int = 3
    tick_s: float = 0.5
    roots: int = 7
    chains: int = 3
    every_s: int = ROOT_EVERY_S
    gap_s: tuple[float, float] = (0.3, 1.5)
    settle_s: float = 8.0
    seed: int = 12
    kinds: tuple[str, ...] = ()
    """The faults in this order (a short drill that must meet each kind); else drawn at random."""


def _now() -> datetime:
    return datetime.now(UTC)


class Faults:
    """Each fault as a function of the fleet and a slot; each records what it saw."""

    def __init__(self, fleet: Fleet, plan: Plan, rng: random.Random) -> None:
        self.fleet, self.plan, self.rng = fleet, plan, rng
        self.lease_s = LEASE_TICKS * plan.tick_s
        self.done: list[Fault] = []

    def revive(self) -> None:
        """Start again an engine that ended by itself (as a service manager would): one that
        could not connect while the server restarted exits 1."""
        for slot in self.fleet.slots:
            if slot.proc is not None and slot.proc.poll() is not None:
                self.done.append(Fault("revive", slot.name, slot.proc.pid, _now(), exit_code=slot.proc.returncode))
                self.fleet.start_engine(slot)

    def victim(self, wait_s: float = 30.0) -> Slot:
        """A slot to hit while another engine runs: the fleet never empties by a fault's doing
        (every engine down at once would be a fleet start, and @reboot would rightly run again)."""
        deadline = time.monotonic() + wait_s
        while True:
            slots = list(self.fleet.slots)
            self.rng.shuffle(slots)
            for slot in slots:
                if self.fleet.others_running(slot) or time.monotonic() > deadline:
                    return slot
            time.sleep(0.2)
            self.revive()

    def inject(self, kind: str, slot: Slot) -> None:
        action: Callable[[Slot], Fault] = getattr(self, f"_{kind}")
        self.done.append(action(slot))

    def _pid(self, slot: Slot) -> int:
        assert slot.proc is not None
        return slot.proc.pid

    def _kill(self, slot: Slot) -> Fault:
        fault = Fault("kill", slot.name, self._pid(slot), _now())
        self.fleet.signal(slot, signal.SIGKILL)
        fault.exit_code = self.fleet.wait_exit(slot, 10)
        self.fleet.start_engine(slot)
        return fault

    def _machine(self, slot: Slot) -> Fault:
        """The machine of this engine died: it, its supervisor and its runs' commands, at once."""
        fault = Fault("machine", slot.name, self._pid(slot), _now())
        fault.killed, fault.killed_at = self.fleet.machine_dies(slot)
        fault.exit_code = self.fleet.wait_exit(slot, 10)
        self.fleet.start_engine(slot)
        return fault

    def _pg_crash(self, slot: Slot) -> Fault:
        """PostgreSQL crashes and stays down past every lease; `slot`'s engine is killed first
        and started again the moment the server is back: it joins before the others renewed
        (a database outage is no fleet start: no @reboot, no one fenced)."""
        fault = Fault("pg_crash", slot.name, self._pid(slot), _now())
        self.fleet.signal(slot, signal.SIGKILL)
        self.fleet.wait_exit(slot, 10)
        down_s = self.lease_s + self.rng.uniform(0.2, 1.5)
        self.fleet.server.crash(down_s)
        self.fleet.start_engine(slot)
        fault.outcome = f"down {down_s:.1f} s"
        return fault

    def _stop(self, slot: Slot) -> Fault:
        """SIGSTOP past the lease, then SIGCONT. A joined engine that a survivor took over must
        be fenced (exit 3); one that had not joined yet, or that nobody took over, must simply go
        on (live, renewing); anything else hung. Meanwhile no survivor may stall past a lease."""
        pid = self._pid(slot)
        fault = Fault("stop", slot.name, pid, _now())
        joined = bool(self.fleet.query("SELECT 1 FROM engines WHERE pid = %s", (pid,)))
        self.fleet.signal(slot, signal.SIGSTOP)
        fault.stall_s = self._survivors_stall(pid, fault.at, self.lease_s + 2 * self.plan.tick_s)
        self.fleet.signal(slot, signal.SIGCONT)
        fault.exit_code = self.fleet.wait_exit(slot, 5 + 4 * self.plan.tick_s)
        if fault.exit_code is not None:
            self.fleet.start_engine(slot)
            return fault
        row = self._engine(pid)
        if self._renewing(pid) and row is not None and row[2] is None:
            fault.outcome = "continued: " + (
                "it joined after SIGCONT" if not joined else "no engine took it over while it was stopped"
            )
            return fault
        waits = self.fleet.query(
            "SELECT state, wait_event_type, wait_event, left(query, 80) FROM "
            "pg_stat_activity WHERE application_name = %s",
            (f"evman pid {pid}",),
        )
        fault.outcome = f"hung: not fenced and not renewing after SIGCONT (engine row {row}, connections {waits})"
        self.fleet.signal(slot, signal.SIGKILL)
        self.fleet.wait_exit(slot, 10)
        self.fleet.start_engine(slot)
        return fault

    def _engine(self, pid: int) -> tuple[object, ...] | None:
        rows = self.fleet.query(
            "SELECT id, state, taken_over_at, heartbeat_at FROM engines WHERE pid = %s ORDER BY id DESC LIMIT 1", (pid,)
        )
        return rows[0] if rows else None

    def _renewing(self, pid: int) -> bool:
        """Its heartbeat moves within two leases, and its row stays live."""
        first = self._engine(pid)
        deadline = time.monotonic() + 2 * self.lease_s
        while time.monotonic() < deadline:
            time.sleep(self.plan.tick_s / 2)
            now = self._engine(pid)
            if now is not None and now[1] == "live" and (first is None or now[3] != first[3]):
                return True
        return False

    def _survivors_stall(self, pid: int, since: datetime, for_s: float) -> float:
        """While `pid` is stopped: the oldest heartbeat among the other engines that had joined
        before, sampled; a survivor waiting behind the stopped engine's locks shows here."""
        worst = 0.0
        deadline = time.monotonic() + for_s
        while time.monotonic() < deadline:
            age = self.fleet.query(
                "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - CAST(heartbeat_at AS timestamptz))), 0) "
                "FROM engines WHERE state = 'live' AND taken_over_at IS NULL AND pid <> %s AND started_at < %s",
                (pid, since.isoformat()),
            )
            worst = max(worst, float(age[0][0]))
            time.sleep(0.1)
        return worst

    def _terminate(self, slot: Slot) -> Fault:
        pid = self._pid(slot)
        fault = Fault("terminate", slot.name, pid, _now())
        cut = self.fleet.query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
            "pg_stat_activity WHERE application_name = %s",
            (f"evman pid {pid}",),
        )
        fault.outcome = f"{cut[0][0]} connection(s) cut"
        return fault

    def _pg_restart(self, slot: Slot) -> Fault:
        fault = Fault("pg_restart", None, None, _now())
        self.fleet.server.restart()
        return fault

    def _term(self, slot: Slot) -> Fault:
        """A graceful stop of a running engine (as a service manager's): once it has joined, so
        that its SIGTERM handler is in place (before, Python's default ends it: exit -15); one
        that ended by itself meanwhile is started again first (a SIGTERM to its gone pid failed
        the drill with ProcessLookupError)."""
        if not self.fleet.wait_joined(slot, 10) and slot.proc is not None and slot.proc.poll() is not None:
            self.revive()  # it ended by itself (it could not connect while the server restarted)
            self.fleet.wait_joined(slot, 10)
        fault = Fault("term", slot.name, self._pid(slot), _now())
        self.fleet.signal(slot, signal.SIGTERM)
        fault.exit_code = self.fleet.wait_exit(slot, self.fleet.grace_s + 10)
        if fault.exit_code is None:
            fault.outcome = "did not stop on SIGTERM"
            self.fleet.signal(slot, signal.SIGKILL)
            self.fleet.wait_exit(slot, 10)
        self.fleet.start_engine(slot)
        return fault


@dataclass
class Outcome:
    """What a drill found: the established measures, issue 24's, and the faults it made."""

    found: Findings
    measures: Measures
    faults: list[Fault]


def run_drill(plan: Plan, root: Path, say: Callable[[str], None] = print) -> Outcome:
    rng = random.Random(plan.seed)
    fleet = Fleet(root, engines=plan.engines, tick_s=plan.tick_s)
    writer: RequestWriter | None = None
    try:
        fleet.start(roots=plan.roots, chains=plan.chains)
        writer = RequestWriter(fleet.dsn, seed=plan.seed).start()
        for slot in fleet.slots:  # the faults begin on a running fleet
            fleet.wait_joined(slot, 60)
        time.sleep(3 * plan.tick_s + plan.every_s)
        started = _now()
        faults = Faults(fleet, plan, rng)
        kinds, weights = zip(*FAULT_WEIGHTS.items(), strict=True)
        for n in range(plan.faults):
            faults.revive()
            kind = plan.kinds[n % len(plan.kinds)] if plan.kinds else rng.choices(kinds, weights)[0]
            faults.inject(kind, faults.victim())
            time.sleep(rng.uniform(*plan.gap_s))
            if (n + 1) % 20 == 0:
                say(f"  {n + 1} faults, {(_now() - started).total_seconds():.0f} s")
        ended = _now()
        faults.revive()
        sent = writer.stop()
        time.sleep(plan.settle_s)
        codes = fleet.stop_all()
        window = (started, ended - timedelta(seconds=plan.every_s + 4 * plan.tick_s))
        found = judge(
            fleet,
            faults.done,
            roots=plan.roots,
            chains=plan.chains,
            every_s=plan.every_s,
            window=window,
            tick_s=plan.tick_s,
        )
        found.problems += [
            f"{f.kind} of pid {f.pid}: {f.outcome}"
            for f in faults.done
            if f.outcome.startswith(("hung", "did not stop"))
        ]
        terms = [(f"SIGTERM to pid {f.pid}", f.exit_code) for f in faults.done if f.kind == "term"]
        terms += [(f"final SIGTERM to {name}", code) for name, code in codes.items()]
        measures = measure(
            {int(r["id"]): r for r in dicts(fleet, "SELECT * FROM runs")},
            dicts(fleet, "SELECT * FROM requests ORDER BY id"),
            read_ledger(fleet.log),
            sent,
            killed_at={pid: f.killed_at for f in faults.done for pid in f.killed},
            fleet_starts=fleet.fleet_starts,
            term_codes=terms,
        )
        fleet.dump(root / "tables")
        return Outcome(found, measures, faults.done)
    finally:
        if writer is not None:
            writer.stop()
        fleet.close()


def report(outcome: Outcome, tick_s: float) -> str:
    rows = render_measures(outcome.measures)
    width = max(len(name) for name, _ in rows)
    lines = [render(outcome.found, outcome.faults, tick_s), "", "issue 24's and issue 22's measures:"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    lines += [f"  {d}" for d in details(outcome.measures)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (logs, database dump).")
    args = parser.parse_args(argv)
    plan = Plan(faults=args.faults, engines=args.engines, tick_s=args.tick, seed=args.seed)
    root = args.keep or Path(tempfile.mkdtemp(prefix="evman-drill-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"drill: {plan.engines} engines, tick {plan.tick_s} s (lease {LEASE_TICKS} ticks), "
        f"{plan.faults} faults, in {root}"
    )
    outcome = run_drill(plan, root)
    print(report(outcome, plan.tick_s))
    found = outcome.found
    bad = (
        not outcome.measures.met
        or found.missing
        or found.doubled
        or found.running_without_process
        or found.lost_without_alert
        or found.fenced_writes_accepted
        or found.problems
        or found.stops_hung
        or found.survivor_stall_s > LEASE_TICKS * plan.tick_s
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
