"""What the drill found: executions per occurrence from the O_APPEND log, and the database's
account of lost runs, alerts, fenced writes and takeovers."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.drill_workload import follower_of
from evman.engine.clock import parse_iso
from evman.engine.model import RunState
from evman.engine.running.procs import pid_alive
from evman.engine.running.supervisor_client import read_exit


@dataclass
class Fault:
    kind: str
    """kill, machine, stop, terminate, pg_restart, pg_crash, term, revive."""
    slot: str | None
    pid: int | None
    at: datetime
    outcome: str = ""
    exit_code: int | None = None
    stall_s: float | None = None
    """A stop: the oldest survivor heartbeat seen while this engine was stopped."""
    killed: list[int] = field(default_factory=list)
    """A machine death: the commands' pids it killed."""
    killed_at: float = 0.0
    """A machine death: when those commands were all stopped (Unix seconds), to be killed."""


@dataclass
class Findings:
    executions: Counter[int] = field(default_factory=Counter)
    """How many occurrences ran 0, 1, 2, ... times."""
    missing: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    running_without_process: int = 0
    """Runs left `running` whose process is gone with no exit record (the next engine could
    only call them lost); one that ended after the engines' last stop has its record."""
    lost_runs: int = 0
    lost_unstarted: int = 0
    """Expected occurrences whose run was lost before its command began (a machine death):
    not missing, lost, with its alert."""
    lost_without_alert: int = 0
    fenced_writes_accepted: int = 0
    stops_fenced: int = 0
    stops_continued: int = 0
    """SIGSTOPped engines that went on after SIGCONT: not joined yet, or nobody took them over."""
    stops_hung: int = 0
    stops: int = 0
    survivor_stall_s: float = 0.0
    """The oldest heartbeat of a survivor while another engine was stopped (goal: under a lease)."""
    crash_takeover_s: list[float] = field(default_factory=list)
    graceful_takeover_s: list[float] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    stop_exits: Counter[str] = field(default_factory=Counter)
    """Exit statuses of the engines SIGSTOPped past their lease (3: fenced)."""
    before_joining: int = 0
    """Faults that hit an engine before it had joined (no engines row yet)."""
    problems: list[str] = field(default_factory=list)


def read_log(path: Path) -> list[tuple[str, str, int, int, int]]:
    """(event, scheduled_for, run id, supervisor pid, command pid) per command started."""
    from bench.drill_measures import read_ledger

    return [(x.event, x.scheduled_for, x.run_id, x.supervisor, x.pid) for x in read_ledger(path) if x.kind == "start"]


class Occurrences:
    """Which occurrence each run belongs to: a scheduled run's own (event, time); a follower's
    is its event with the root occurrence's time; a retry's is the run it repeats."""

    def __init__(self, runs: dict[int, dict[str, Any]]) -> None:
        self.runs = runs
        self._memo: dict[int, tuple[str, str]] = {}

    def of(self, run_id: int) -> tuple[str, str]:
        if run_id not in self._memo:
            self._memo[run_id] = self._find(self.runs[run_id])
        return self._memo[run_id]

    def _find(self, run: dict[str, Any]) -> tuple[str, str]:
        if run["repeats_run_id"] is not None and run["repeats_run_id"] in self.runs:
            return self.of(int(run["repeats_run_id"]))
        parent = str(run["triggered_by"] or "")
        if run["trigger"] != "schedule" and parent.startswith("run:") and int(parent[4:]) in self.runs:
            return (run["event"], self.of(int(parent[4:]))[1])
        return (run["event"], run["scheduled_for"])


def judge(
    fleet: Any,
    faults: list[Fault],
    *,
    roots: int,
    chains: int,
    every_s: int,
    window: tuple[datetime, datetime],
    tick_s: float,
) -> Findings:
    found = Findings()
    runs = dicts(fleet, "SELECT * FROM runs")
    by_id = {int(r["id"]): r for r in runs}
    found.states = Counter(r["state"] for r in runs)
    occurrences = Occurrences(by_id)
    ran = Counter(occurrences.of(run_id) for _, _, run_id, _, _ in read_log(fleet.log) if run_id in by_id)
    expected = _expected(by_id, occurrences, roots=roots, chains=chains, every_s=every_s, window=window)
    lost = {occurrences.of(run_id) for run_id, r in by_id.items() if r["state"] == RunState.LOST}
    for key in sorted(expected):
        count = ran.get(key, 0)
        if count == 0 and key in lost:  # its engine's machine died before its command began
            found.lost_unstarted += 1
            continue
        found.executions[count] += 1
        if count == 0:
            found.missing.append(f"{key[0]} @ {key[1]}")
        elif count > 1:
            found.doubled.append(f"{key[0]} @ {key[1]} ran {count} times")
    found.running_without_process = sum(
        1
        for r in runs
        if r["state"] == RunState.RUNNING
        and (r["pid"] is None or not pid_alive(int(r["pid"])))
        and read_exit(r["log_path"]) is None  # ended after the last stop: its record says how
    )
    _lost(fleet, runs, found)
    _fencing(fleet, faults, found, tick_s)
    return found


def _expected(
    runs: dict[int, dict[str, Any]],
    occurrences: Occurrences,
    *,
    roots: int,
    chains: int,
    every_s: int,
    window: tuple[datetime, datetime],
) -> set[tuple[str, str]]:
    """Every root fire time inside the window (from each root's first occurrence, on its grid),
    and a follower for every occurrence whose predecessor succeeded."""
    from evman.engine.clock import iso

    expected: set[tuple[str, str]] = set()
    start, end = window
    for i in range(roots):
        name = f"s{i}"
        firsts = sorted(
            parse_iso(r["scheduled_for"]) for r in runs.values() if r["event"] == name and r["trigger"] == "schedule"
        )
        if not firsts:
            continue
        at = firsts[0]
        while at is not None and at <= end:
            if at >= start:
                expected.add((name, iso(at) or ""))
            at += timedelta(seconds=every_s)
    for run in runs.values():
        follower = follower_of(run["event"], chains)
        if run["state"] != RunState.SUCCEEDED or follower is None:
            continue
        root_time = occurrences.of(int(run["id"]))[1]
        at = parse_iso(root_time)
        if at is not None and start <= at <= end:
            expected.add((follower, root_time))
    return expected


def _lost(fleet: Any, runs: list[dict[str, Any]], found: Findings) -> None:
    lost = Counter(r["event"] for r in runs if r["state"] == RunState.LOST)
    alerted = Counter[str]()
    for event, count in fleet.query("SELECT event, sum(count) FROM alerts WHERE kind = 'lost' GROUP BY event"):
        alerted[str(event)] = int(count)
    found.lost_runs = sum(lost.values())
    found.lost_without_alert = sum(max(0, n - alerted[event]) for event, n in lost.items())
    found.problems += [
        f"{event}: {n} lost run(s), {alerted[event]} counted in its lost alerts"
        for event, n in lost.items()
        if n > alerted[event]
    ]


def _fencing(fleet: Any, faults: list[Fault], found: Findings, tick_s: float) -> None:
    engines = {int(e["pid"]): e for e in dicts(fleet, "SELECT * FROM engines")}
    for pid, engine in engines.items():
        taken = engine.get("taken_over_at")
        if taken is None:
            continue
        accepted = fleet.query(
            "SELECT count(*) FROM drill_audit WHERE app = %s AND at > %s", (f"evman pid {pid}", taken)
        )
        found.fenced_writes_accepted += int(accepted[0][0])
    for fault in faults:
        faulted = engines.get(fault.pid or -1)
        if fault.kind == "stop":
            found.stops += 1
            found.stops_fenced += int(fault.exit_code == 3)
            found.stops_continued += int(fault.outcome.startswith("continued"))
            found.stops_hung += int(fault.outcome.startswith("hung"))
            found.survivor_stall_s = max(found.survivor_stall_s, fault.stall_s or 0.0)
            found.stop_exits[str(fault.exit_code)] += 1
        if faulted is None:  # hit before it had joined: nothing of it to take over
            found.before_joining += int(fault.kind in ("kill", "term", "stop"))
            continue
        if faulted.get("taken_over_at") is None:
            if fault.kind in ("kill", "term"):
                found.problems.append(f"{fault.kind} of pid {fault.pid}: its engine was never taken over")
            continue
        taken = parse_iso(faulted["taken_over_at"])
        assert taken is not None
        if fault.kind == "kill":
            found.crash_takeover_s.append((taken - fault.at).total_seconds())
        elif fault.kind == "term" and faulted.get("stopped_at"):
            stopped = parse_iso(faulted["stopped_at"])
            assert stopped is not None
            found.graceful_takeover_s.append((taken - stopped).total_seconds())


def dicts(fleet: Any, sql: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(fleet.dsn, autocommit=True, row_factory=dict_row) as conn:
        return list(conn.execute(sql).fetchall())


def render(found: Findings, faults: list[Fault], tick_s: float) -> str:
    def ticks(values: list[float]) -> str:
        if not values:
            return "none measured"
        p50 = statistics.median(values)
        return (
            f"p50 {p50:.2f} s ({p50 / tick_s:.1f} ticks), max {max(values):.2f} s "
            f"({max(values) / tick_s:.1f} ticks), n={len(values)}"
        )

    kinds = Counter(f.kind for f in faults)
    rows = [
        ("faults", ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + f" ({len(faults)} in all)"),
        (
            "executions per occurrence",
            ", ".join(f"{n}x: {c}" for n, c in sorted(found.executions.items())) + "   (goal: all 1x)",
        ),
        ("missing inside the misfire window", f"{len(found.missing)}   (goal 0)"),
        ("lost before their command began", f"{found.lost_unstarted}   (a machine death; each lost run alerted)"),
        ("run more than once", f"{len(found.doubled)}   (goal 0)"),
        ("runs left running without a process", f"{found.running_without_process}   (goal 0)"),
        ("lost runs / without an alert", f"{found.lost_runs} / {found.lost_without_alert}   (goal 0 without)"),
        (
            "SIGSTOP past the lease, then SIGCONT",
            f"{found.stops}: fenced (exit 3) {found.stops_fenced}, "
            f"went on {found.stops_continued} (not joined yet, or not taken over), hung {found.stops_hung}"
            "   (goal 0 hung)",
        ),
        (
            "oldest survivor heartbeat during a stop",
            f"{found.survivor_stall_s:.2f} s ({found.survivor_stall_s / tick_s:.1f} ticks)"
            f"   (goal under a lease, {3 * tick_s:g} s)",
        ),
        ("faults that hit an engine before it joined", str(found.before_joining)),
        ("fenced writes accepted", f"{found.fenced_writes_accepted}   (goal 0)"),
        ("crash takeover (SIGKILL -> taken over)", ticks(found.crash_takeover_s) + "   (goal <= 3 ticks + 1)"),
        ("graceful takeover (released -> taken over)", ticks(found.graceful_takeover_s) + "   (goal <= 1 tick)"),
        ("runs by state", ", ".join(f"{k} {v}" for k, v in sorted(found.states.items()))),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name.ljust(width)}  {value}" for name, value in rows]
    lines += [f"  problem: {p}" for p in found.problems[:20]]
    lines += [f"  missing: {m}" for m in found.missing[:10]]
    lines += [f"  doubled: {d}" for d in found.doubled[:10]]
    return "\n".join(lines)
