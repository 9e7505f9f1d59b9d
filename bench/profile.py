"""Where the engine's time goes in a workload:

    uv run python -m bench.profile w1|w2|w4 [N] [--cpu] [--cprofile]

By default it times the tick's phases and the hot helpers (wall clock, so time spent waiting
for the GIL while worker threads run counts too) and prints, per phase, the total and the
cost per run. --cpu times them by the calling thread's CPU time instead (what the phase
itself costs, whatever else ran: steadier on a busy machine). --cprofile adds cProfile's
top functions for the engine thread (slower, and its overhead inflates small functions).
For all threads at once: py-spy record -f raw."""

from __future__ import annotations

import cProfile
import functools
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import burst, flow
from evman.engine import engine as engine_module
from evman.engine.engine import Engine
from evman.engine.running.executors import Executors
from evman.engine.stages import flush as flush_stage
from evman.engine.stages import followups as followups_stage
from evman.engine.stages import reap as reap_stage
from evman.engine.stages import start as start_stage
from evman.engine.store import Store
from evman.engine.tick import lifecycle, readview

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
    (Executors, "_run_call"),
    (Store, "apply"),
    (readview, "spec_from_json"),
    (start_stage, "evaluate"),
    (followups_stage, "evaluate"),
)
"""(owner, name) of what is timed: the stages as the engine calls them, and the hot helpers
where their callers look them up."""


CLOCK = {"now": time.perf_counter}


def _timed(times: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        now = CLOCK["now"]
        started = now()
        try:
            return fn(*args, **kwargs)
        finally:
            times.setdefault(name, []).append(now() - started)

    return timed


def _run(workload: str, n: int, tmp: Path) -> tuple[str, int]:
    if workload in ("w1", "w2"):
        got = burst.evman_burst(tmp, n, "call" if workload == "w1" else "true")
        return (
            f"{got.completed} of {got.expected} runs, {got.throughput:,.0f}/s, lateness p50 "
            f"{got.late_p50_ms:.1f} ms, p99 {got.late_p99_ms:.1f} ms, exactly once: {got.exactly_once}"
        ), n
    if workload == "w4":
        return f"due to last finished: {flow.evman_flow(tmp) * 1000:.1f} ms", flow.LAYERS * flow.WIDTH
    raise SystemExit(f"unknown workload {workload!r}; choose w1, w2 or w4")


def phases(workload: str, n: int) -> None:
    times: dict[str, list[float]] = {}
    saved = [(owner, name, getattr(owner, name)) for owner, name in PHASES]
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
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    workload = args[0] if args else "w1"
    n = int(args[1]) if len(args) > 1 else (2000 if workload == "w1" else 500)
    if "--cpu" in argv:
        CLOCK["now"] = time.thread_time
        print("times: CPU time of the calling thread")
    phases(workload, n)
    if "--cprofile" in argv:
        cprofiled(workload, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
