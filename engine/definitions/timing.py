"""When an event runs and for how long: schedule, zone, window, runtime, concurrency, misfire."""
from __future__ import annotations

from typing import Any, Final

from engine.definitions.table import Context, Table, without_none
from engine.definitions.zones import read_timezone
from engine.durations import format_duration
from engine.model import Concurrency, Misfire, Runtime, Window
from engine.schedules import ScheduleError, parse_schedule

WINDOW_KEYS: Final = ("earliest", "latest")
RUNTIME_KEYS: Final = ("min", "max", "kill")


def read_timing(table: Table, context: Context) -> dict[str, Any]:
    return {
        "schedule": _read_schedule(table),
        "timezone": read_timezone(table) or context.defaults.timezone,
        "window": _read_window(table),
        "late_after": table.window_time("late_after"),
        "runtime": _read_runtime(table),
        "timeout_s": table.duration("timeout", positive=True),
        "concurrency": table.choice("concurrency", Concurrency),
        "misfire": table.choice("misfire", Misfire),
    }


def _read_schedule(table: Table) -> str | None:
    spec = table.string("schedule", blank_ok=False)
    if spec is None:
        return None
    try:
        parse_schedule(spec.strip())
    except ScheduleError as exc:
        table.error("schedule", str(exc))
        return None
    return spec.strip()


def _read_window(table: Table) -> Window | None:
    window = table.sub("window", WINDOW_KEYS)
    if window is None:
        return None
    earliest, latest = window.window_time("earliest"), window.window_time("latest")
    if earliest is not None and earliest == latest:
        window.error("latest", f"equals earliest ({earliest}); expected a different time "
                               "(a latest before earliest spans midnight)")
    return Window(earliest=earliest, latest=latest)


def _read_runtime(table: Table) -> Runtime | None:
    runtime = table.sub("runtime", RUNTIME_KEYS)
    if runtime is None:
        return None
    least, most = runtime.duration("min"), runtime.duration("max")
    kill = runtime.boolean("kill")
    if least is not None and most is not None and least > most:
        runtime.error("min", f"is longer than max ({format_duration(least)} > {format_duration(most)}); "
                             "expected min <= max")
    if kill and "max" not in runtime.data:
        runtime.error("kill", "is true but there is no max; expected a max to kill at")
    return Runtime(**without_none({"min_s": least, "max_s": most, "kill": kill}))
