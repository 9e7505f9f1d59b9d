"""Build sample.db: examples/publishing.toml after a simulated day, so the console has history to show.

    uv run python examples/make_sample_db.py            # writes ./sample.db
    uv run python examples/make_sample_db.py --out /tmp/x.db

The example's schedules are in seconds so that it runs in seconds; a day of that would be
tens of thousands of runs. Here every duration in the file ("every 6 seconds", backoffs,
runtime bounds, lookbacks) is stretched by SCALE, so the same workflow reads like a real
one ("every 20 minutes"), and a fake clock walks it through one day, Monday 2 March 2026 in
Europe/London. The commands really run (in examples/, writing its feeds/, site/, outbox/ and
state/, which are git-ignored); while they run the fake clock moves a few seconds per step, so
runs have durations. The day holds successes, sync-media's retries and three outages (failed,
then recovered), the launch announcement missing its window, production promotions
waiting overnight for their 06:00 window, a hold and release, acknowledgements and a
manual trigger. Takes well under 30 s; run ids and times come out the same each time, give
or take a run whose command beats the clock.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, duration_text, parse_definitions
from evman.engine.engine import Engine
from evman.engine.model import RunState
from evman.engine.store import open_store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SCALE = 200
ZONE = "Europe/London"
DAY = datetime(2026, 3, 2, tzinfo=ZoneInfo(ZONE))
STEP = timedelta(minutes=1)
PACE_S = (3, 7, 4, 12, 5, 2, 9, 6)
"""Fake seconds that pass at each hop while commands run, in turn: varied but repeatable."""
GENERATED = ("feeds", "site", "outbox", "state")

OPERATOR: dict[tuple[int, int], tuple[str, str, str]] = {
    (2, 36): ("ack", "sync-media", "ops-oncall"),
    (11, 5): ("trigger", "fetch-feeds", "editor"),
    (13, 0): ("hold", "promote-to-production", "release-manager"),
    (15, 30): ("release", "promote-to-production", "release-manager"),
    (10, 55): ("ack", "sync-media", "ops-oncall"),
}
"""(hour, minute) local -> (verb, target, who): what people did that day, through the mailbox."""


def stretched(text: str, scale: int) -> str:
    """The definitions with every seconds duration `scale` times longer."""

    def every(match: re.Match[str]) -> str:
        seconds = int(match[1]) * scale
        return f"every {seconds // 60} minutes" if seconds % 60 == 0 else f"every {seconds} seconds"

    def quoted(match: re.Match[str]) -> str:
        return f'"{duration_text(int(match[1]) * scale)}"'

    return re.sub(r'"(\d+)s"', quoted, re.sub(r"every (\d+) seconds", every, text))


def pace() -> Iterator[float]:
    return itertools.cycle(PACE_S)


def in_flight(engine: Engine) -> bool:
    return any(r.state is RunState.RUNNING or r.preparing for r in engine.active_runs())


def run_until_quiet(engine: Engine, clock: FakeClock, steps: Iterator[float]) -> None:
    """Tick now; while commands run, let fake time pass, wait for them for real, tick again."""
    engine.tick(clock.now())
    while in_flight(engine):
        clock.advance(timedelta(seconds=next(steps)))
        deadline = time.monotonic() + 20
        while engine.executors.running_count() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.005)  # the reaper hands the outcome over just after the child is gone
        engine.tick(clock.now())
    engine.settle(clock.now())


def ask(db: Path, verb: str, target: str, who: str, at: datetime) -> None:
    other = open_store(db)
    try:
        other.add_request(verb, target, requested_by=who, now=at)
    finally:
        other.close()


def build(out: Path, *, scale: int = SCALE, hours: int = 24, examples: Path = HERE) -> dict[str, int]:
    """Write `out` from `examples`/publishing.toml; returns run counts by state, and "alerts"."""
    os.environ["TZ"] = ZONE  # the example leaves its zone to the machine; pin it here
    for name in GENERATED:
        shutil.rmtree(examples / name, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    source = examples / "publishing.toml"
    here = Path(os.path.relpath(examples, out.absolute().parent))
    defs = parse_definitions(
        stretched(source.read_text(encoding="utf-8"), scale), source=str(here / source.name), base_dir=examples
    )
    # cwd relative to the database's folder (the engine resolves it there): works from any clone
    defs = dataclasses.replace(
        defs,
        events=tuple(dataclasses.replace(e, cwd=os.path.relpath(e.cwd, out.absolute().parent)) for e in defs.events),
    )
    clock = FakeClock(DAY)
    store = open_store(out)
    catalog.save(store, defs, now=clock.now())
    logs = Path(tempfile.mkdtemp(prefix="evman-sample-logs-"))
    engine = Engine(store, clock=clock, logs_dir=logs, stop_grace_s=5)
    engine.start()
    steps = pace()
    try:
        end = DAY + timedelta(hours=hours)
        at = DAY
        while at < end:
            action = OPERATOR.get((at.hour, at.minute))
            if action is not None:
                ask(out, action[0], action[1], action[2], at)
            clock.set(max(clock.now(), at))
            run_until_quiet(engine, clock, steps)
            at += STEP
    finally:
        engine.shutdown()
        shutil.rmtree(logs, ignore_errors=True)
    # the logs were temporary; the console then shows each run's stored output tail
    store.execute("UPDATE runs SET log_path = NULL")
    counts = {row[0]: row[1] for row in store.execute("SELECT state, count(*) FROM runs GROUP BY state")}
    counts["alerts"] = store.execute("SELECT count(*) FROM alerts").fetchone()[0]
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sample.db", help="database to write (replaced)")
    parser.add_argument("--hours", type=int, default=24, help="how much of the day to simulate")
    args = parser.parse_args()
    started = time.monotonic()
    counts = build(args.out, hours=args.hours)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"wrote {args.out} in {time.monotonic() - started:.1f} s: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
