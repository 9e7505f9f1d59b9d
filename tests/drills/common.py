"""What the drills share: real `evman` processes, an orphan reaper, plain-sqlite3 views of the
database, and the invariants every drill checks afterwards.

Everything here reads the database the way any other program would (the standard library's
sqlite3), so a drill judges evman from the outside.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.outside import (  # noqa: F401 (re-exported for the drills)
    EVMAN_SCRIPT,
    ROOT,
    connect,
    evman_argv,
    is_zombie,
    kill_group,
    rows,
    set_child_subreaper,
    wait_until,
)

REPORTS: list[str] = []
"""Each drill's numbers, printed at the end of a pytest run (tests/drills/conftest.py)."""

JOB_SCRIPT = """\
#!/bin/sh
# job.sh SLEEP FAIL_EVERY: note the start and end of this run in $LEDGER, then exit 1 when the
# run id is a multiple of FAIL_EVERY (0: never fail, 1: always fail).
echo "$EVMAN_RUN_ID $EVMAN_EVENT start $(date +%s.%N) $$" >> "$LEDGER"
sleep "$1"
code=0
if [ "$2" -gt 0 ] && [ $((EVMAN_RUN_ID % $2)) -eq 0 ]; then code=1; fi
echo "$EVMAN_RUN_ID $EVMAN_EVENT end $(date +%s.%N) $code" >> "$LEDGER"
exit $code
"""


def evman(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `evman ARGS` as a real process."""
    return subprocess.run(
        evman_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `evman ARGS` in this process (click's runner): the same code as the `evman` command,
    without half a second of interpreter start. An exception that escapes shows up in stderr
    as the traceback a user would have seen."""
    import traceback

    from click.testing import CliRunner

    from evman.console.cli.main import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    stderr = result.stderr
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
        code = 99
    return subprocess.CompletedProcess(list(args), code, result.stdout, stderr)


def start_engine(db: Path, *extra: str, log: Path) -> subprocess.Popen[bytes]:
    """`evman --no-ui --db DB` in the background, its output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            evman_argv("--no-ui", "--db", str(db), *extra), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


# ---------------------------------------------------------------- processes


class OrphanReaper:
    """Adopt and reap the engine's orphaned commands, as a reaping init (systemd) would.

    This sandbox's PID 1 never reaps, so the commands of a SIGKILLed engine would stay zombies
    and look alive to every `kill -0`. As a child subreaper this process inherits them; a thread
    reaps every child that is not one of ours (the engines, which we wait for ourselves)."""

    def __init__(self) -> None:
        self.ours: set[int] = set()
        self.reaped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orphan-reaper", daemon=True)

    def __enter__(self) -> OrphanReaper:
        set_child_subreaper(True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.reap_now()
        set_child_subreaper(False)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.reap_now()

    def reap_now(self) -> None:
        me = os.getpid()
        for pid in _children_of(me):
            if pid in self.ours or not is_zombie(pid):
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
                self.reaped += 1
            except ChildProcessError:
                pass


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def process_alive(pid: int | None) -> bool:
    """Alive in the sense that matters: it exists and is not a zombie."""
    if not pid:
        return False
    fields = _stat_fields(int(pid))
    return fields is not None and fields[0] != "Z"


# ---------------------------------------------------------------- the database, from outside


def scalar(db: Path, query: str, params: Sequence[Any] = ()) -> Any:
    conn = connect(db)
    try:
        return conn.execute(query, params).fetchone()[0]
    finally:
        conn.close()


def insert_request(
    conn: sqlite3.Connection,
    verb: str,
    target: str,
    *,
    by: str,
    dedupe_key: str | None = None,
    args: dict[str, Any] | None = None,
) -> int:
    """A request row written with plain sqlite3, as the README shows other programs doing it."""
    with conn:
        cur = conn.execute(
            "INSERT INTO requests (verb, target, args, requested_by, dedupe_key) VALUES (?, ?, ?, ?, ?)",
            (verb, target, None if args is None else json.dumps(args), by, dedupe_key),
        )
    return int(cur.lastrowid or 0)


def content_digest(db: Path) -> str:
    """The database's content (schema and rows) as text: equal digests, same content."""
    import hashlib

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()


# ---------------------------------------------------------------- invariants


@dataclass
class Report:
    """What a drill counted, and what it found wrong (empty when all is well)."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def text(self) -> str:
        lines = [f"{self.name}: " + ("OK" if not self.problems else f"{len(self.problems)} PROBLEM(S)")]
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        lines += [f"  PROBLEM: {p}" for p in self.problems[:30]]
        if len(self.problems) > 30:
            lines.append(f"  ... and {len(self.problems) - 30} more")
        return "\n".join(lines)


RETRYABLE = ("failed", "lost")
RESTARTABLE = ("failed", "killed", "lost", "missed", "skipped")


def check_database(db: Path, report: Report, *, retries: dict[str, int] | None = None) -> None:
    """The invariants every drill ends with: integrity, one run chain per occurrence, no run left
    `running` without a live process, an alert row for every failure that should page, every
    request handled once."""
    report.check(scalar(db, "PRAGMA integrity_check") == "ok", "PRAGMA integrity_check is not ok")
    runs = rows(
        db,
        "SELECT id, event, state, trigger, attempt, repeats_run_id, scheduled_for, pid, "
        "triggered_by, reason FROM runs ORDER BY id",
    )
    by_id = {r["id"]: r for r in runs}
    report.counts["runs"] = len(runs)
    report.counts["runs by state"] = dict(sorted(Counter(r["state"] for r in runs).items()))

    dupes = rows(
        db,
        "SELECT event, scheduled_for, attempt, count(*) AS n FROM runs "
        "GROUP BY event, scheduled_for, attempt HAVING n > 1",
    )
    report.check(not dupes, f"duplicate (event, scheduled_for, attempt): {dupes[:5]}")

    chains: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        chains[(r["event"], r["scheduled_for"])].append(r)
    report.counts["occurrences (run chains)"] = len(chains)
    final_failures: Counter[tuple[str, str]] = Counter()
    for (event, at), chain in chains.items():
        chain.sort(key=lambda r: r["attempt"])
        attempts = [r["attempt"] for r in chain]
        if attempts != list(range(1, len(chain) + 1)):
            report.problems.append(f"{event} @ {at}: attempts {attempts} are not one chain 1..n")
            continue
        for prev, nxt in zip(chain, chain[1:], strict=False):
            if nxt["repeats_run_id"] != prev["id"]:
                report.problems.append(
                    f"{event} @ {at}: attempt {nxt['attempt']} (run {nxt['id']}) "
                    f"repeats run {nxt['repeats_run_id']}, not run {prev['id']}"
                )
            if prev["state"] not in RESTARTABLE:
                report.problems.append(f"{event} @ {at}: run {prev['id']} was repeated although it {prev['state']}")
        last = chain[-1]
        if last["state"] in RETRYABLE:
            final_failures[(event, last["state"])] += 1
        if last["repeats_run_id"] is not None and last["repeats_run_id"] not in by_id:
            report.problems.append(f"run {last['id']} repeats run {last['repeats_run_id']}, which does not exist")

    running = [r for r in runs if r["state"] == "running"]
    dead = [r for r in running if not process_alive(r["pid"])]
    report.counts["left running (with a live process)"] = len(running) - len(dead)
    report.check(
        not dead,
        f"{len(dead)} run(s) left running without a live process: "
        + ", ".join(f"run {r['id']} pid {r['pid']}" for r in dead[:10]),
    )

    # every chain that ended in failure pages: alert counts fold repeats of one open alert
    alerted: Counter[tuple[str, str]] = Counter()
    for a in rows(db, "SELECT event, kind, count FROM alerts WHERE kind IN ('failed', 'lost')"):
        alerted[(a["event"], "failed" if a["kind"] == "failed" else "lost")] += int(a["count"])
    for key in sorted(set(final_failures) | set(alerted)):
        if final_failures[key] != alerted[key]:
            report.problems.append(
                f"{key[0]}: {final_failures[key]} chain(s) ended {key[1]}, but its {key[1]} alerts count {alerted[key]}"
            )
    report.counts["chains ended failed/lost (should page)"] = sum(final_failures.values())
    report.counts["alert rows"] = scalar(db, "SELECT count(*) FROM alerts")

    open_requests = scalar(db, "SELECT count(*) FROM requests WHERE handled_at IS NULL")
    report.counts["requests"] = scalar(db, "SELECT count(*) FROM requests")
    report.check(open_requests == 0, f"{open_requests} request row(s) never handled")
    # a request acts at most once: no two runs name the same request
    by_request = Counter(
        r["triggered_by"].rsplit("(request ", 1)[1]
        for r in runs
        if r["triggered_by"] and "(request " in r["triggered_by"]
    )
    twice = [k for k, n in by_request.items() if n > 1]
    report.check(not twice, f"requests acted on twice: {twice[:10]}")


def check_deliveries(db: Path, report: Report) -> None:
    """Every failed/lost alert row has a delivery attempt that was sent."""
    undelivered = rows(
        db,
        "SELECT a.id, a.event, a.kind FROM alerts a WHERE a.kind IN ('failed', 'lost') "
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id "
        "AND d.outcome = 'sent')",
    )
    report.counts["deliveries sent"] = scalar(db, "SELECT count(*) FROM deliveries WHERE outcome = 'sent'")
    report.check(not undelivered, f"{len(undelivered)} alert(s) without a sent delivery: {undelivered[:5]}")


def notifier_exists() -> bool:
    return (ROOT / "engine" / "paging" / "notifier.py").exists()


@dataclass(frozen=True)
class Execution:
    """One command as the ledger saw it run."""

    run_id: int
    event: str
    start: float
    end: float | None
    """None: it never wrote its end line (killed, or still running)."""


def read_ledger(path: Path) -> tuple[list[Execution], Counter[int]]:
    """The executions in the jobs' ledger, and how often each run id started."""
    starts: dict[int, tuple[str, float]] = {}
    ends: dict[int, float] = {}
    count: Counter[int] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 5 or not parts[0].isdigit():
                continue
            run_id, event, what, at = int(parts[0]), parts[1], parts[2], float(parts[3])
            if what == "start":
                count[run_id] += 1
                starts[run_id] = (event, at)
            else:
                ends[run_id] = at
    execs = [Execution(r, e, at, ends.get(r)) for r, (e, at) in starts.items()]
    return execs, count


def overlapping(execs: list[Execution], until: float) -> list[tuple[Execution, Execution]]:
    """Pairs of executions of one event that ran at the same time (an unfinished one runs
    until `until`)."""
    by_event: dict[str, list[Execution]] = defaultdict(list)
    for e in execs:
        by_event[e.event].append(e)
    pairs = []
    for runs in by_event.values():
        runs.sort(key=lambda e: e.start)
        for a, b in zip(runs, runs[1:], strict=False):
            if b.start < (a.end if a.end is not None else until):
                pairs.append((a, b))
    return pairs
