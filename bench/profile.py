"""Where the engine's time goes in a workload:

    uv run python -m bench.profile w1|w2|w3|w4 [N] [--cpu] [--cprofile]

w3 drives bench W3 (N events in the catalogue, default 100,000, on a FakeClock) and times
only the ticks that materialise and start 10 runs. By default it times the tick's phases and the hot helpers (wall clock, so time spent waiting
for the GIL while worker threads run counts too) and prints, per phase, the total and the
cost per run. --cpu times them by the calling thread's CPU time instead (what the phase
itself costs, whatever else ran: steadier on a busy machine). --cprofile adds cProfile's
top functions for the engine thread (slower, and its overhead inflates small functions).
For all threads at once: py-spy record -f raw."""

from __future__ import annotations

import cProfile
import functools
import gc
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import burst, catalogue, flow
from evman.engine import engine as engine_module
from evman.engine.engine import Engine
from evman.engine.running.executors import Executors
from evman.engine.running.inprocess import Workers
from evman.engine.stages import flush as flush_stage
from evman.engine.stages import followups as followups_stage
from evman.engine.stages import reap as reap_stage
from evman.engine.stages import start as start_stage
from evman.engine.store import Store
from evman.engine.tick import lifecycle, readview
from evman.engine.tick.pace import Pace
from evman.engine.tick.readview import ReadView

PHASES: tuple[tuple[Any, str], ...] = (
    (Engine, "tick"),
    (engine_module, "materialise"),
    (engine_module, "reap"),
    (engine_module, "follow_up"),
    (engine_module, "start_ready"),
    (engine_module, "check_deadlines"),
    (engine_module, "flush_and_spawn"),
    (flush_stage, "flush"),
    (flush_stage, "_start_committed"),
    (lifecycle, "new_run"),
    (lifecycle, "finish"),
    (reap_stage, "judge"),
    (Executors, "start"),
    (Store, "apply"),
    (readview, "spec_from_json"),
    (start_stage, "evaluate"),
    (followups_stage, "evaluate"),
)
"""(owner, name) of what is timed: the stages as the engine calls them, and the hot helpers
where their callers look them up."""

W3_PHASES: tuple[tuple[Any, str], ...] = (
    (Store, "claim_due_events"),
    (ReadView, "remember"),
    (ReadView, "prefetch"),
    (ReadView, "committed_elsewhere"),
    (Pace, "read_next_due"),
    (flush_stage, "spawn"),
    (Executors, "log_for"),
    (start_stage, "why_waiting_here"),
    (Workers, "submit"),
)
"""What W3's due tick adds to PHASES: its reads of the events table and the specs it decodes."""
W3_TICKS = 300
"""Due ticks timed by `w3` (after catalogue.measure's warm-up)."""


CLOCK = {"now": time.perf_counter}
GATE = {"open": True}
"""Phases are timed while it is open (w3: in the due ticks only)."""


def _timed(times: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not GATE["open"]:
            return fn(*args, **kwargs)
        now = CLOCK["now"]
        started = now()
        try:
            return fn(*args, **kwargs)
        finally:
            times.setdefault(name, []).append(now() - started)

    return timed


def _run(workload: str, n: int, tmp: Path, profile: cProfile.Profile | None = None) -> tuple[str, int]:
    if workload in ("w1", "w2"):
        got = burst.evman_burst(tmp, n, "call" if workload == "w1" else "true")
        return (
            f"{got.completed} of {got.expected} runs, {got.throughput:,.0f}/s, lateness p50 "
            f"{got.late_p50_ms:.1f} ms, p99 {got.late_p99_ms:.1f} ms, exactly once: {got.exactly_once}"
        ), n
    if workload == "w4":
        return f"due to last finished: {flow.evman_flow(tmp) * 1000:.1f} ms", flow.LAYERS * flow.WIDTH
    if workload == "w3":
        return _w3(tmp, n, profile), W3_TICKS * catalogue.DUE_PER_TICK
    raise SystemExit(f"unknown workload {workload!r}; choose w1, w2, w3 or w4")


def _w3(tmp: Path, n: int, profile: cProfile.Profile | None) -> str:
    """W3's due ticks at n events (the phases timed, and `profile` enabled, in those ticks only)."""
    path = tmp / "catalogue.db"
    instants = catalogue.build(path, n)
    GATE["open"] = False
    catalogue.measure(path, instants, 0, 5)  # the bench's warm-up
    timed_tick = catalogue.timed_tick

    def gated(engine: Engine, at: Any, times: catalogue.TickTimes) -> None:
        GATE["open"] = True
        if profile is not None:
            profile.enable()
        try:
            timed_tick(engine, at, times)
        finally:
            GATE["open"] = False
            if profile is not None:
                profile.disable()

    catalogue.timed_tick = gated
    gc.collect()  # on a collected, frozen heap, as the bench measures
    gc.freeze()
    try:
        got = catalogue.measure(path, instants, 5, W3_TICKS).summary()
    finally:
        gc.unfreeze()
        catalogue.timed_tick = timed_tick
        GATE["open"] = True
    return (
        f"{n:,} events, {W3_TICKS} due ticks of {catalogue.DUE_PER_TICK} runs: wall median "
        f"{got['due_median']:.2f} ms, p99 {got['due_p99']:.2f} ms; CPU median {got['due_cpu_median']:.2f} ms, "
        f"p99 {got['due_cpu_p99']:.2f} ms"
    )


def phases(workload: str, n: int) -> None:
    times: dict[str, list[float]] = {}
    timed = PHASES + (W3_PHASES if workload == "w3" else ())
    saved = [(owner, name, getattr(owner, name)) for owner, name in timed]
    for owner, name, fn in saved:
        setattr(owner, name, _timed(times, name, fn))
    try:
        with tempfile.TemporaryDirectory(prefix="evman-profile-") as tmp:
            result, runs = _run(workload, n, Path(tmp))
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    print(result)
    print(f"{'phase':<22}{'calls':>7}{'total ms':>10}{'µs per run':>12}{'slowest ms':>12}")
    for name, values in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"{name:<22}{len(values):>7}{sum(values) * 1000:>10.1f}{sum(values) / runs * 1e6:>12.1f}"
            f"{max(values) * 1000:>12.2f}"
        )


def cprofiled(workload: str, n: int) -> None:
    if workload == "w3":
        prof = cProfile.Profile()
        with tempfile.TemporaryDirectory(prefix="evman-profile-") as tmp:
            print(_run(workload, n, Path(tmp), prof)[0])
        _print_profile(prof)
        return
    profiles: list[cProfile.Profile] = []
    original = Engine.run

    def run(self: Engine) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    Engine.run = run  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory(prefix="evman-profile-") as tmp:
            print(_run(workload, n, Path(tmp))[0])
    finally:
        Engine.run = original  # type: ignore[method-assign]
    for prof in profiles:
        _print_profile(prof)


def _print_profile(prof: cProfile.Profile) -> None:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    workload = args[0] if args else "w1"
    n = int(args[1]) if len(args) > 1 else {"w1": 2000, "w3": 100_000}.get(workload, 500)
    if "--cpu" in argv:
        CLOCK["now"] = time.thread_time
        print("times: CPU time of the calling thread")
    phases(workload, n)
    if "--cprofile" in argv:
        cprofiled(workload, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
