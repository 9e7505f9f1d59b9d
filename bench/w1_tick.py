"""W1's due tick alone, on a FakeClock: N callables (bench W1's spec) due together, the look-ahead
done between the ticks as the engine's loop does it, then the one tick that makes and starts them.

    uv run python -m bench.w1_tick [N]        # the tick's CPU, and when its callables began
    valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        .venv/bin/python -m bench.w1_tick [N]  # instructions inside the due tick only

Under callgrind, collection is switched on just before the due tick, its counts dumped after it
(callgrind.out.<pid>.1-01: the engine thread is the main thread), and switched off once every
callable ran (the worker threads: their files in both dumps; under valgrind they mostly run
after the tick). A three-line C library calling CALLGRIND_TOGGLE_COLLECT and
CALLGRIND_DUMP_STATS, compiled here with `cc`, through ctypes. Counts do not move with the
machine's load."""

from __future__ import annotations

import cProfile
import ctypes
import gc
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import jobs
from bench.evman_side import BENCH_DIR, at_schedule
from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog
from evman.engine.engine import Engine
from evman.engine.model import Defaults, Definitions, EventSpec
from evman.engine.store import open_store

DUE = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
_TOGGLE_C = (
    "#include <valgrind/callgrind.h>\n"
    "void toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
    "void dump(void) { CALLGRIND_DUMP_STATS; }\n"
)


def _callgrind(tmp: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    """CALLGRIND_TOGGLE_COLLECT and CALLGRIND_DUMP_STATS (no-ops outside valgrind); nothing when
    they cannot be built."""
    source, lib = tmp / "toggle.c", tmp / "toggle.so"
    source.write_text(_TOGGLE_C)
    built = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(source)], capture_output=True)
    if built.returncode != 0:
        return (lambda: None), (lambda: None)
    found = ctypes.CDLL(str(lib))
    toggle: Callable[[], None] = found.toggle
    dump: Callable[[], None] = found.dump
    return toggle, dump


def due_tick(n: int, tmp: Path, profile: cProfile.Profile | None = None) -> dict[str, float]:
    path = tmp / "w1.db"
    store = open_store(path)
    specs = tuple(
        EventSpec(f"b{i:05d}", call="bench.jobs:noop", cwd=BENCH_DIR, schedule=at_schedule(DUE)) for i in range(n)
    )  # as bench W1's
    catalog.save(
        store, Definitions(Defaults(timezone="UTC"), {}, specs, source="bench"), now=DUE - timedelta(seconds=2)
    )
    store.close()
    toggle, dump = _callgrind(tmp)
    clock = FakeClock(DUE - timedelta(seconds=2))
    engine = Engine(open_store(path), clock=clock, logs_dir=tmp / "logs")
    engine.start()
    engine.tick(clock.now())
    engine.between_ticks()  # the look-ahead, as the loop does it while it waits
    gc.collect()
    gc.freeze()
    jobs.reset()
    clock.set(DUE)
    toggle()
    if profile is not None:
        profile.enable()
    cpu, began = time.thread_time(), time.time()
    engine.tick(DUE)
    cpu = time.thread_time() - cpu
    if profile is not None:
        profile.disable()
    dump()  # the due tick's counts (the engine thread: the main thread's file)
    deadline = time.monotonic() + 60
    while len(jobs.calls) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    toggle()  # the worker threads' counts: both dumps (the callables mostly run after the tick)
    starts = sorted(s for _, s, _ in jobs.calls)
    engine.settle(DUE)
    engine.stop()
    engine.shutdown()
    gc.unfreeze()
    return {
        "tick_cpu_ms": cpu * 1000,
        "first_ms": (starts[0] - began) * 1000,
        "p50_ms": (starts[len(starts) // 2] - began) * 1000,
        "p99_ms": (starts[int(len(starts) * 0.99) - 1] - began) * 1000,
        "last_ms": (starts[-1] - began) * 1000,
        "calls": len(starts),
    }


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else 2000
    profile = cProfile.Profile() if "--cprofile" in argv else None
    with tempfile.TemporaryDirectory(prefix="evman-w1tick-") as tmp:
        got = due_tick(n, Path(tmp), profile)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(35)
    print(
        f"{got['calls']:.0f} of {n} callables; due tick CPU {got['tick_cpu_ms']:.1f} ms; callables began "
        f"(from the tick's start) first {got['first_ms']:.1f}, p50 {got['p50_ms']:.1f}, "
        f"p99 {got['p99_ms']:.1f}, last {got['last_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
