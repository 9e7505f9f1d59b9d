"""Concurrent writers: while `evman --no-ui` runs a busy workload, ten processes write requests
with plain sqlite3 (as README's mailbox example does) and `evman load` changes the definitions in
a loop. No `database is locked` reaches any of them, no request is lost or handled twice, and a
definition change takes effect at the engine's next tick.

    uv run python -m tests.drills.concurrent_writers --seconds 60      # the long form
    uv run python -m tests.drills.concurrent_writers --seconds 5       # about the short form
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from tests.drills.common import (
    ROOT,
    OrphanReaper,
    Report,
    check_database,
    evman,
    rows,
    scalar,
    start_engine,
    wait_until,
)

WRITERS = 10
TICK_S = 0.5
TARGETS = 8


def definitions(gen: int) -> str:
    """Generation `gen` of the definitions: the marker echoes it; a busy event's schedule and
    an extra event change with it."""
    out = ["[defaults]", 'timezone = "UTC"', ""]
    for i in range(20):
        every = 2 if (i == 0 and gen % 2) else 3
        out += ["[[event]]", f'name = "busy-{i:02d}"', 'run = "true"', f'schedule = "every {every} seconds"', ""]
    for i in range(TARGETS):
        out += ["[[event]]", f'name = "target-{i}"', 'run = "sleep 0.1"', ""]
    out += ["[[event]]", 'name = "marker"', f'run = "echo gen-{gen}"', 'schedule = "every 1 seconds"', ""]
    out += ["[[event]]", f'name = "extra-{gen % 3}"', 'run = "true"', ""]
    return "\n".join(out)


def writer(db: Path, index: int, seconds: float, out: Path) -> int:
    """One writing program: plain sqlite3, README's way. Prints nothing; writes its log to `out`."""
    rng = random.Random(index)
    conn = sqlite3.connect(db, timeout=10)
    written: list[dict] = []
    errors: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        verb, target = rng.choice(
            [("trigger", f"target-{rng.randrange(TARGETS)}")] * 4
            + [
                ("hold", f"target-{rng.randrange(TARGETS)}"),
                ("release", f"target-{rng.randrange(TARGETS)}"),
                ("trigger", "no-such-event"),
                ("ack", "busy-00"),
            ]
        )
        key = f"dup-{int(time.time() * 2)}" if rng.random() < 0.25 else None  # shared across writers
        try:
            with conn:
                cur = conn.execute(
                    "INSERT INTO requests (verb, target, requested_by, dedupe_key) VALUES (?, ?, ?, ?)",
                    (verb, target, f"writer-{index}", key),
                )
            written.append({"id": cur.lastrowid, "key": key})
        except sqlite3.Error as exc:
            errors.append(str(exc))
        time.sleep(rng.uniform(0.02, 0.15))
    conn.close()
    out.write_text(json.dumps({"written": written, "errors": errors}))
    return 0


def concurrent_writers(workdir: Path, *, seconds: float, log=print) -> Report:
    report = Report(f"concurrent writers ({seconds:g} s, {WRITERS} writer processes + evman load loop)")
    workdir.mkdir(parents=True, exist_ok=True)
    db, engine_log, defs = workdir / "busy.db", workdir / "engine.log", workdir / "defs.toml"
    defs.write_text(definitions(0))
    loaded = evman("load", str(defs), "--db", str(db))
    if loaded.returncode != 0:
        report.problems.append(f"first load failed: {loaded.stderr}")
        return report
    with OrphanReaper() as reaper:
        engine = start_engine(db, "--tick", str(TICK_S), log=engine_log)
        reaper.ours.add(engine.pid)
        wait_until(
            lambda: scalar(db, "SELECT count(*) FROM runs WHERE event = 'marker'") > 0,
            timeout=20,
            what="the engine to run",
        )
        started = time.monotonic()
        writers = []
        for i in range(WRITERS):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.drills.concurrent_writers",
                    "writer",
                    str(db),
                    str(i),
                    str(seconds),
                    str(workdir / f"writer-{i}.json"),
                ],
                cwd=ROOT,
            )
            reaper.ours.add(proc.pid)
            writers.append(proc)
        loads: list[tuple[int, float, float]] = []  # generation, load started, load done (epoch)
        cli_errors: list[str] = []
        gen = 0
        while time.monotonic() - started < seconds:
            gen += 1
            defs.write_text(definitions(gen))
            began = time.time()
            done = evman("load", str(defs), "--prune", "--db", str(db))
            loads.append((gen, began, time.time()))
            for what, result in (
                ("load", done),
                ("trigger", evman("trigger", "target-0", "--db", str(db), "--wait", "0")),
                ("list", evman("list", "--json", "--db", str(db))),
            ):
                if result.returncode != 0 or "locked" in result.stderr:
                    cli_errors.append(f"evman {what}: exit {result.returncode}: {result.stderr.strip()}")
            time.sleep(0.2)
        for proc in writers:
            proc.wait(seconds + 60)
            reaper.ours.discard(proc.pid)
        log(f"  writers done after {time.monotonic() - started:.0f} s; {gen} loads")
        try:
            wait_until(
                lambda: scalar(db, "SELECT count(*) FROM requests WHERE handled_at IS NULL") == 0,
                timeout=120,
                what="the engine to handle every request",
            )
        except AssertionError as exc:
            report.problems.append(str(exc))
        time.sleep(2 * TICK_S)
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(60)
        reaper.ours.discard(engine.pid)
        report.check(code == 0, f"the engine exited {code} after SIGTERM")

    report.counts["seconds"] = round(time.monotonic() - started, 1)
    report.check(not cli_errors, f"{len(cli_errors)} CLI call(s) failed: {cli_errors[:3]}")
    report.counts["evman load runs (definition changes)"] = len(loads)
    _check_requests(db, workdir, report)
    _check_generations(db, loads, report)
    check_database(db, report)
    text = engine_log.read_text(errors="replace")
    report.check("Traceback" not in text, "the engine log holds a traceback")
    report.check("locked" not in text, "the engine log says the database was locked")
    return report


def _check_requests(db: Path, workdir: Path, report: Report) -> None:
    written: list[dict] = []
    errors: list[str] = []
    for path in sorted(workdir.glob("writer-*.json")):
        data = json.loads(path.read_text())
        written += data["written"]
        errors += data["errors"]
    report.counts["requests written by the writers"] = len(written)
    report.check(not errors, f"writers saw {len(errors)} error(s), e.g. {errors[:3]}")
    stored = {r["id"]: r for r in rows(db, "SELECT * FROM requests WHERE requested_by LIKE 'writer-%'")}
    lost = [w["id"] for w in written if w["id"] not in stored]
    report.check(
        not lost and len(stored) == len(written),
        f"{len(lost)} request(s) written but not in the table; {len(stored)} stored for {len(written)}",
    )
    handled = [r for r in stored.values() if r["handled_at"]]
    report.counts["requests handled"] = len(handled)
    report.counts["outcomes"] = dict(Counter(_outcome_kind(r["outcome"]) for r in handled).most_common())
    by_key: dict[str, list[dict]] = defaultdict(list)
    for r in stored.values():
        if r["dedupe_key"]:
            by_key[r["dedupe_key"]].append(r)
    for key, group in by_key.items():
        group.sort(key=lambda r: r["id"])
        acted = [r for r in group if not (r["outcome"] or "").startswith("duplicate of")]
        if len(acted) != 1 or acted[0]["id"] != group[0]["id"]:
            report.problems.append(
                f"dedupe key {key}: acted on {[r['id'] for r in acted]}, expected only the first, {group[0]['id']}"
            )
    report.counts["dedupe keys shared between writers"] = sum(1 for g in by_key.values() if len(g) > 1)


def _outcome_kind(outcome: str | None) -> str:
    text = outcome or "(none)"
    return re.sub(r"\d+", "N", text.split(";")[0])[:60]


def _check_generations(db: Path, loads: list[tuple[int, float, float]], report: Report) -> None:
    """Each marker run echoes the definitions generation it ran under; one that started more
    than a tick (and a margin for a loaded machine) after a load finished ran that load's."""
    from datetime import datetime

    runs = rows(
        db, "SELECT id, started_at, output_tail FROM runs WHERE event = 'marker' AND state = 'succeeded' ORDER BY id"
    )
    margin = TICK_S + 1.0
    late: list[str] = []
    started: list[tuple[float, int]] = []
    for run in runs:
        found = re.search(r"gen-(\d+)", run["output_tail"] or "")
        if not found or not run["started_at"]:
            continue
        gen = int(found.group(1))
        start = datetime.fromisoformat(run["started_at"]).timestamp()
        started.append((start, gen))
        expected = max((g for g, _, done in loads if done + margin < start), default=0)
        if gen < expected:
            done_at = next(d for g, _, d in loads if g == expected)
            late.append(
                f"run {run['id']} ran generation {gen}, {expected} was loaded {start - done_at:.1f} s before it started"
            )
    # how long each change took to show: its load's end to the first run under it (or newer)
    delays = [
        min(s for s, g in started if g >= gen) - done
        for gen, _, done in loads
        if any(g >= gen and s > done for s, g in started)
    ]
    report.counts["marker runs checked"] = len(started)
    if delays:
        report.counts["slowest definition change to show in a run (s)"] = round(max(delays), 2)
    report.check(not late, f"{len(late)} run(s) used old definitions: {late[:3]}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "writer":
        _, db, index, seconds, out = argv
        return writer(Path(db), int(index), float(seconds), Path(out))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    import tempfile

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="evman-writers-"))
    print(f"concurrent writers in {workdir}", flush=True)
    report = concurrent_writers(workdir, seconds=args.seconds, log=lambda s: print(s, flush=True))
    print(report.text())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
