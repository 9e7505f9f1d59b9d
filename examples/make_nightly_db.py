"""Build nightly.db: examples/nightly.toml after 20 simulated nights, caught tonight at 01:55.

    uv run python examples/make_nightly_db.py                 # writes ./nightly.db
    uv run python examples/make_nightly_db.py --out /tmp/n.db --nights 20 --stop 01:55
    uv run evman plan --db nightly.db --at 2026-03-21T01:55:00+00:00

The real engine runs the file's events on a fake clock; each event's command is swapped for
bench.simjobs:job, which takes a lognormal run time around its median (sigma 0.1) and returns
when the fake clock gets there, so every started_at and ended_at is the simulated one. Tonight
`transform` runs 2.5x its usual time, and `new-report` is defined only tonight (no history:
low confidence). The database is left as it was at --stop: transform still running. Takes a
few seconds; the same seed gives the same database.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.simjobs import Driver, SimJobs
from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.model import Definitions
from evman.engine.store import open_store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

ZONE = ZoneInfo("Europe/London")
TONIGHT = datetime(2026, 3, 20, 22, 0, tzinfo=ZONE)
"""Friday 20 March 2026 (London is on GMT until the 29th: local times read as UTC)."""
MEDIAN_MIN = {
    "extract": 40,
    "transform": 120,
    "load-warehouse": 60,
    "publish-reports": 25,
    "refresh-dashboards": 15,
    "backup": 30,
    "new-report": 8,
}
TONIGHT_FACTOR = {"transform": 2.5}
NEW_TONIGHT = "new-report"
SIGMA = 0.1


def simulated(defs: Definitions, *, tonight: bool) -> Definitions:
    """The definitions with every action swapped for the simulated job; before tonight
    without NEW_TONIGHT (and what starts it)."""
    events = []
    for e in defs.events:
        if not tonight and e.name == NEW_TONIGHT:
            continue
        on_success = e.on_success if tonight else tuple(n for n in e.on_success if n != NEW_TONIGHT)
        events.append(
            dataclasses.replace(e, run=None, shell=None, call="bench.simjobs:job", cwd=str(ROOT), on_success=on_success)
        )
    return dataclasses.replace(defs, events=tuple(events))


def save(path: Path, defs: Definitions, now: datetime) -> None:
    """Through a connection of its own, as `evman load` would: the engine sees the change."""
    other = open_store(path)
    try:
        catalog.save(other, defs, now=now)
    finally:
        other.close()


def build(out: Path, *, nights: int = 20, stop: str = "01:55", seed: int = 3) -> dict[str, int]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    source = HERE / "nightly.toml"
    defs = parse_definitions(source.read_text(encoding="utf-8"), source=str(source), base_dir=HERE)
    rng = random.Random(seed)
    state = {"tonight": False}

    def duration(event: str, _attempt: int) -> float:
        took = rng.lognormvariate(math.log(MEDIAN_MIN[event] * 60), SIGMA)
        return took * (TONIGHT_FACTOR.get(event, 1.0) if state["tonight"] else 1.0)

    first = TONIGHT - timedelta(days=nights, hours=1)
    clock = FakeClock(first)
    save(out, simulated(defs, tonight=False), clock.now())
    store = open_store(out)
    logs = Path(tempfile.mkdtemp(prefix="evman-nightly-logs-"))
    engine = Engine(store, clock=clock, logs_dir=logs)
    engine.start()
    hour, minute = (int(p) for p in stop.split(":"))
    stop_at = (TONIGHT + timedelta(days=1)).replace(hour=hour, minute=minute)
    try:
        with SimJobs(clock, duration) as sim:
            driver = Driver(engine, sim, step_s=None)
            driver.run_until(TONIGHT - timedelta(hours=1))
            save(out, simulated(defs, tonight=True), clock.now())
            state["tonight"] = True
            driver.step_s = 60.0
            driver.run_until(stop_at)
    finally:
        engine.executors.shutdown(wait_s=0)
        shutil.rmtree(logs, ignore_errors=True)
    store.execute("UPDATE runs SET log_path = NULL")
    counts = {row[0]: row[1] for row in store.execute("SELECT state, count(*) FROM runs GROUP BY state")}
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "nightly.db", help="database to write (replaced)")
    parser.add_argument("--nights", type=int, default=20, help="nights of history before tonight")
    parser.add_argument("--stop", default="01:55", help="tonight's local time to stop at (HH:MM, after midnight)")
    args = parser.parse_args()
    started = time.monotonic()
    counts = build(args.out, nights=args.nights, stop=args.stop)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"wrote {args.out} in {time.monotonic() - started:.1f} s: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
