"""Crash loop: a few hundred short events under `evman --no-ui`, SIGKILLed at random moments and
restarted each time; then one clean run and stop, and the invariants.

    uv run python -m tests.drills.crash_loop --kills 50 --groups 50     # the long form
    uv run python -m tests.drills.crash_loop --kills 6 --groups 8       # about the short form

The workload, per group of six events: `root` every 2-5 s, whose success starts `mid` (fails one
run in three, one retry), whose success starts `tail`; `cond` waits on `success(tail)` and
`notrunning(slow)`; `flaky` always fails (a `prepare` step, one retry, queued concurrency) and
pages; `slow` takes 1.5 s, so kills often land while it runs. Alerts go to an HTTP receiver on
127.0.0.1. Meanwhile a writer queues trigger, hold and release requests with plain sqlite3.
Every command notes its start and end in a ledger, so the drill also sees what really ran.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.drills import crash_retention
from tests.drills.common import (
    JOB_SCRIPT,
    OrphanReaper,
    Report,
    check_database,
    check_deliveries,
    connect,
    evman,
    insert_request,
    notifier_exists,
    overlapping,
    read_ledger,
    rows,
    scalar,
    start_engine,
    wait_until,
)


def workload(groups: int, job: Path, ledger: Path, alert_url: str) -> str:
    out = ["[defaults]", 'timezone = "UTC"', 'driver = "local"', "", "[routes]", f'local = ["{alert_url}"]', ""]

    def event(name: str, **keys: str) -> None:
        out.append("[[event]]")
        out.append(f'name = "{name}"')
        out.append(f'env = {{ LEDGER = "{ledger}" }}')
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")

    def run(sleep: float, fail_every: int) -> str:
        return f'"sh {job} {sleep} {fail_every}"'

    for g in range(groups):
        p = f"g{g:03d}"
        every = 2 + g % 4
        event(f"{p}-root", run=run(0.1, 0), schedule=f'"every {every} seconds"', on_success=f'["{p}-mid"]')
        event(f"{p}-mid", run=run(0.2, 3), on_success=f'["{p}-tail"]', on_failure='{ retries = 1, backoff = "1s" }')
        event(f"{p}-tail", run=run(0.05, 0))
        event(f"{p}-cond", run=run(0.05, 0), requires=f'"success({p}-tail) and notrunning({p}-slow)"')
        event(
            f"{p}-flaky",
            run=run(0.1, 1),
            schedule=f'"every {every + 2} seconds"',
            concurrency='"queue"',
            on_failure='{ retries = 1, backoff = "1s", prepare = "true" }',
        )
        event(f"{p}-slow", run=run(1.5, 5), schedule='"every 5 seconds"', on_failure='{ retries = 2, backoff = "1s" }')
    return "\n".join(out)


class RequestWriter(threading.Thread):
    """Queues requests with plain sqlite3 while the engine lives and dies."""

    def __init__(self, db: Path, groups: int, seed: int) -> None:
        super().__init__(name="request-writer", daemon=True)
        self.db, self.groups = db, groups
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.written = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = connect(self.db)
        try:
            while not self.stop.wait(self.rng.uniform(0.05, 0.4)):
                g = f"g{self.rng.randrange(self.groups):03d}"
                verb, target = self.rng.choice(
                    [
                        ("trigger", f"{g}-tail"),
                        ("trigger", f"{g}-cond"),
                        ("hold", f"{g}-slow"),
                        ("release", f"{g}-slow"),
                        ("trigger", "no-such-event"),
                    ]
                )
                key = f"k{self.rng.randrange(40)}" if self.rng.random() < 0.2 else None
                try:
                    insert_request(conn, verb, target, by="crash-drill", dedupe_key=key)
                    self.written += 1
                except sqlite3.Error as exc:
                    self.errors.append(str(exc))
        finally:
            conn.close()


def crash_loop(
    workdir: Path,
    *,
    kills: int,
    groups: int,
    seed: int = 7,
    min_up_s: float = 0.3,
    max_up_s: float = 3.0,
    log=print,
    retention: bool = True,
) -> Report:
    """Run the drill in `workdir`; returns the report (problems empty when all held)."""
    from tests.receivers import HttpReceiver

    rng = random.Random(seed)
    report = Report(f"crash loop ({kills} kills, {groups * 6} events)")
    workdir.mkdir(parents=True, exist_ok=True)
    db, engine_log, ledger = workdir / "crash.db", workdir / "engine.log", workdir / "ledger"
    job = workdir / "job.sh"
    job.write_text(JOB_SCRIPT)
    with HttpReceiver() as receiver, OrphanReaper() as reaper:
        defs = workdir / "crash.toml"
        defs.write_text(workload(groups, job, ledger, receiver.url("/alerts")))
        loaded = evman("load", str(defs), "--db", str(db))
        if loaded.returncode != 0:
            report.problems.append(f"evman load failed: {loaded.stderr}")
            return report
        if retention:
            crash_retention.arm(db)
            os.environ["EVMAN_HOUSEKEEPING_EVERY_S"] = crash_retention.EVERY_S  # the engines inherit it
        writer = RequestWriter(db, groups, seed)
        writer.start()
        started = time.monotonic()
        engine_args = ("--tick", "0.5", "--grace", "5")
        quick_exits = 0
        for n in range(kills):
            proc = start_engine(db, *engine_args, log=engine_log)
            reaper.ours.add(proc.pid)
            up = rng.uniform(min_up_s, max_up_s)
            try:
                proc.wait(up)
                quick_exits += 1  # it ended by itself: a refusal to start, said in its log
            except Exception:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            reaper.ours.discard(proc.pid)
            if retention:
                crash_retention.after_kill(db, report)
            if (n + 1) % 10 == 0:
                log(
                    f"  {n + 1} kills, {time.monotonic() - started:.0f} s, "
                    f"{scalar(db, 'SELECT count(*) FROM runs')} runs so far"
                )
        writer.stop.set()
        writer.join()

        # the last engine runs cleanly until the mailbox is empty and alerts are out, then stops
        proc = start_engine(db, *engine_args, log=engine_log)
        reaper.ours.add(proc.pid)
        try:
            wait_until(
                lambda: scalar(db, "SELECT count(*) FROM requests WHERE handled_at IS NULL") == 0,
                timeout=60,
                what="the last engine to handle every request",
            )
            if retention:  # before the deliveries: alerts raised meanwhile are waited for too
                wait_until(lambda: crash_retention.caught_up(db), timeout=60, what="housekeeping to catch up")
            if notifier_exists():
                wait_until(
                    lambda: (
                        scalar(
                            db,
                            "SELECT count(*) FROM alerts a WHERE kind IN ('failed', 'lost') "
                            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE "
                            "d.alert_id = a.id AND d.outcome = 'sent')",
                        )
                        == 0
                    ),
                    timeout=60,
                    what="every alert to be delivered",
                )
            time.sleep(1.0)
        except AssertionError as exc:
            report.problems.append(str(exc))
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except Exception:
            proc.kill()
            code = proc.wait()
            report.problems.append("the last engine did not stop within 30 s of SIGTERM")
        reaper.ours.discard(proc.pid)
        report.check(code == 0, f"the last engine exited {code} after SIGTERM, not 0")

        report.counts["kills survived"] = kills - quick_exits
        report.counts["engine starts that ended by themselves"] = quick_exits
        report.counts["seconds"] = round(time.monotonic() - started, 1)
        report.counts["requests written during the kills"] = writer.written
        report.check(not writer.errors, f"request writer saw errors: {writer.errors[:3]}")
        if retention:
            crash_retention.check(db, report)
            crash_retention.restore(db)
        check_database(db, report)
        if notifier_exists():
            check_deliveries(db, report)
            report.counts["alert POSTs received"] = len(receiver.posts)
            report.counts["alerts received more than once (killed between sending and recording)"] = _pages_twice(
                db, receiver.posts
            )
        else:
            report.counts["deliveries"] = "not checked: engine/paging/notifier.py does not exist yet"
        _check_ledger(db, ledger, report)
        report.counts["orphaned commands reaped"] = reaper.reaped
        _check_engine_log(engine_log, report)
        _count_adoptions(engine_log, report)
    return report


def _check_ledger(db: Path, ledger: Path, report: Report) -> None:
    """What really ran: no run id started twice, no event ran twice at once (a command the
    engine lost track of, running beside its retry or its next occurrence)."""
    execs, starts = read_ledger(ledger)
    twice = [r for r, n in starts.items() if n > 1]
    report.check(not twice, f"run ids whose command started more than once: {twice[:10]}")
    report.counts["commands started (ledger)"] = sum(starts.values())
    pairs = overlapping(execs, time.time())
    report.check(
        not pairs,
        f"{len(pairs)} time(s) one event ran twice at once: "
        + ", ".join(f"{a.event} runs {a.run_id} and {b.run_id}" for a, b in pairs[:5]),
    )
    lost = {r["id"]: r["reason"] for r in rows(db, "SELECT id, reason FROM runs WHERE state = 'lost'")}
    ran = {e.run_id: e for e in execs}
    report.counts["lost runs (engine died while they ran)"] = len(lost)
    report.counts["lost runs whose command had in fact finished"] = sum(
        1 for r in lost if r in ran and ran[r].end is not None
    )
    finished_lost = [r for r in lost if r in ran and ran[r].end is not None]
    report.check(
        not finished_lost, f"lost runs whose command had finished (its exit was knowable): {finished_lost[:10]}"
    )
    unrecorded = [r for r, reason in lost.items() if "before it recorded" in (reason or "")]
    report.counts["lost runs never recorded with a pid (killed between recording and spawning)"] = len(unrecorded)
    report.counts["  of which the command had started (it finished before the next engine looked)"] = sum(
        1 for r in unrecorded if r in ran
    )
    _check_exit_codes(db, ledger, report)


def _ledger_codes(ledger: Path) -> dict[int, int]:
    """run id -> the exit code the command wrote on its own `end` line."""
    codes = {}
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit() and parts[2] == "end":
            codes[int(parts[0])] = int(parts[4])
    return codes


def _check_exit_codes(db: Path, ledger: Path, report: Report) -> None:
    """Exactly once for what ran: every finished command's exit code as it said it, and no
    command that succeeded run again (a retry or restart repeating it)."""
    codes = _ledger_codes(ledger)
    ended = {
        r["id"]: r
        for r in rows(db, "SELECT id, state, exit_code FROM runs WHERE state IN ('succeeded', 'failed', 'killed')")
    }
    wrong = [(i, codes[i], r["exit_code"]) for i, r in ended.items() if i in codes and r["exit_code"] != codes[i]]
    report.check(
        not wrong, f"runs whose recorded exit code is not the command's own (run, said, recorded): {wrong[:10]}"
    )
    repeated = {
        r["repeats_run_id"] for r in rows(db, "SELECT repeats_run_id FROM runs WHERE repeats_run_id IS NOT NULL")
    }
    rerun = sorted(i for i, code in codes.items() if code == 0 and i in repeated)
    report.check(not rerun, f"commands that succeeded and ran again: {rerun[:10]}")
    report.counts["succeeded commands run again"] = len(rerun)
    report.counts["finished runs whose exit code matches the command's own"] = sum(
        1 for i, r in ended.items() if i in codes and r["exit_code"] == codes[i]
    )


def _count_adoptions(log_path: Path, report: Report) -> None:
    text = log_path.read_text(errors="replace")
    report.counts["runs recorded from their exit record (ended while no engine ran)"] = text.count(
        "ended while no engine ran"
    )
    report.counts["runs adopted (still running when the next engine started)"] = text.count(
        "outlived the previous engine; watching it"
    )


def _pages_twice(db: Path, posts: list) -> str:
    """Alerts the receiver took more often than their deliveries say were sent: the engine was
    killed after a send and before recording it, and the next engine sent it again (delivery
    is at least once)."""
    import re

    received = Counter(int(m.group(1)) for p in posts for m in [re.search(r"alert:(\d+)", p.body)] if m)
    sent = Counter(r["alert_id"] for r in rows(db, "SELECT alert_id FROM deliveries WHERE outcome = 'sent'"))
    extra = sum(n - sent[alert_id] for alert_id, n in received.items() if n > sent[alert_id])
    return f"{sum(1 for a, n in received.items() if n > sent[a])} alerts, {extra} extra messages"


def _check_engine_log(log_path: Path, report: Report) -> None:
    text = log_path.read_text(errors="replace")
    report.check("Traceback" not in text, "the engine log holds a traceback")
    report.check("database is locked" not in text, "the engine log says 'database is locked'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--groups", type=int, default=50, help="groups of six events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--max-up", type=float, default=3.0, help="longest life of an engine, seconds")
    parser.add_argument("--no-retention", action="store_true", help="keep every run (no compressed horizons)")
    args = parser.parse_args(argv)
    import tempfile

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="evman-crash-"))
    print(f"crash loop in {workdir}", flush=True)
    report = crash_loop(
        workdir,
        kills=args.kills,
        groups=args.groups,
        seed=args.seed,
        max_up_s=args.max_up,
        log=lambda s: print(s, flush=True),
        retention=not args.no_retention,
    )
    print(report.text())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
