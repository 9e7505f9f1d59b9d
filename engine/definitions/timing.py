"""When an event runs and for how long: schedule, zone, window, deadline, runtime, expect,
concurrency, misfire, calendar, on_holiday, on_blackout."""

from __future__ import annotations

from typing import Any, Final

from evman.engine.definitions.calendars import resolve_calendar
from evman.engine.definitions.table import Context, Table, without_none
from evman.engine.definitions.zones import read_timezone
from evman.engine.model import Calendar, Concurrency, Misfire, OnBlackout, OnHoliday, Runtime, Window
from evman.engine.quoting import quoted
from evman.engine.timing.durations import format_duration, parse_duration
from evman.engine.timing.occurrences import check_schedule
from evman.engine.timing.schedules import ScheduleError

WINDOW_KEYS: Final = ("earliest", "latest")
RUNTIME_KEYS: Final = ("min", "max", "kill")


def read_timing(table: Table, context: Context) -> dict[str, Any]:
    return {
        "schedule": _read_schedule(table),
        "timezone": read_timezone(table) or context.defaults.timezone,
        "window": _read_window(table),
        "late_after": table.window_time("late_after"),
        "deadline": _read_deadline(table),
        **_read_runtimes(table),
        "timeout_s": table.duration("timeout", positive=True),
        "concurrency": table.choice("concurrency", Concurrency),
        "misfire": table.choice("misfire", Misfire),
        "calendar": _read_calendar(table, context),
        "on_holiday": _read_on_holiday(table),
        "on_blackout": table.choice("on_blackout", OnBlackout),
    }


def _read_calendar(table: Table, context: Context) -> Calendar | None:
    name = table.string("calendar", blank_ok=False)
    if name is None:
        return None
    known = context.calendars or {}
    if name not in known:
        names = ", ".join(sorted(known))
        hint = f"expected one of {names}" if names else f"expected a [calendars.{name}] table in this file"
        table.error("calendar", f"{quoted(name)} is not a calendar of this file; {hint}")
        return None
    return resolve_calendar(name, known)


def _read_on_holiday(table: Table) -> OnHoliday | None:
    value = table.choice("on_holiday", OnHoliday)
    if value is not None and "calendar" not in table.data:
        table.error("on_holiday", 'has no calendar to follow; expected calendar = "NAME" beside it')
        return None
    return value


def _read_schedule(table: Table) -> str | None:
    spec = table.string("schedule", blank_ok=False)
    if spec is None:
        return None
    try:
        check_schedule(spec.strip())
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
        window.error(
            "latest",
            f"equals earliest ({earliest}); expected a different time (a latest before earliest spans midnight)",
        )
    return Window(earliest=earliest, latest=latest)


def _read_deadline(table: Table) -> str | None:
    deadline = table.window_time("deadline")
    if deadline is not None and deadline.startswith("+") and parse_duration(deadline[1:]) == 0:
        table.error(
            "deadline",
            f"is {deadline}, which every run misses; expected a time of day such as "
            '"06:00" or a time after the occurrence fell due such as "+6h"',
        )
        return None
    return deadline


def _read_runtimes(table: Table) -> dict[str, Any]:
    """runtime = { min, max, kill } and expect: the typical runtime, within min and max."""
    runtime = _read_runtime(table)
    expect = table.duration("expect", positive=True)
    if runtime is not None and expect is not None:
        least, most = runtime.min_s, runtime.max_s
        if most is not None and expect > most:
            table.error(
                "expect",
                f"is longer than runtime.max ({format_duration(expect)} > "
                f"{format_duration(most)}); expected a typical runtime within runtime's bounds",
            )
        elif least is not None and expect < least:
            table.error(
                "expect",
                f"is shorter than runtime.min ({format_duration(expect)} < "
                f"{format_duration(least)}); expected a typical runtime within runtime's bounds",
            )
    return {"runtime": runtime, "expect_s": expect}


def _read_runtime(table: Table) -> Runtime | None:
    runtime = table.sub("runtime", RUNTIME_KEYS)
    if runtime is None:
        return None
    least, most = runtime.duration("min"), runtime.duration("max")
    kill = runtime.boolean("kill")
    if least is not None and most is not None and least > most:
        runtime.error(
            "min", f"is longer than max ({format_duration(least)} > {format_duration(most)}); expected min <= max"
        )
    if kill and "max" not in runtime.data:
        runtime.error("kill", "is true but there is no max; expected a max to kill at")
    return Runtime(**without_none({"min_s": least, "max_s": most, "kill": kill}))
