"""Hostile input for the parsers: hypothesis strategies that generate and mutate definitions,
`requires` conditions, durations, times of day, schedules and crontabs, and the property each
parser must keep: it accepts the input (and what it returns works), or it raises its own error
type with a message that names the place. Never another exception.

The checks are plain functions of one input, so the tests can run them under any number of
examples (short form in every `uv run pytest`, long form with `-m long`)."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from evman.engine.conditions import ConditionError, Finished, evaluate, parse_condition, render
from evman.engine.crontab import CrontabError, parse_crontab
from evman.engine.definitions import (
    DefinitionsError,
    catalog,
    export_toml,
    parse_definitions,
    spec_from_json,
    spec_to_json,
)
from evman.engine.model import RunState
from evman.engine.quoting import quoted
from evman.engine.store import open_store
from evman.engine.timing.durations import (
    DurationError,
    TimeOfDayError,
    format_duration,
    parse_duration,
    parse_time_of_day,
)
from evman.engine.timing.schedules import ScheduleError, fires_between, next_fire, parse_schedule, preview

TRIED: Counter[str] = Counter()
"""Inputs each check has seen, for the drill's numbers."""
ACCEPTED: Counter[str] = Counter()
"""Of those, how many the parser accepted (the rest it refused with its own error)."""

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

# ---------------------------------------------------------------- building blocks

NASTY = [
    "",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x00",
    "\x7f",
    "\u202e",
    "\ufeff",
    "é",
    "日本",
    "🙂",
    "\\",
    "'",
    '"',
    "''",
    '""',
    "$(touch pwned)",
    "`id`",
    ";",
    "&&",
    "|",
    "%",
    "%%",
    "#",
    "=",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ",",
    "*",
    "?",
    "-",
    "/",
    ".",
    "..",
    "~",
    "~root",
    "9" * 40,
    "-1",
    "1e309",
    "nan",
    "inf",
    "0x10",
    "１２",
    "²",
]


def _mutate(text: str) -> st.SearchStrategy[str]:
    """`text` with a few random edits: deletions, insertions, replacements, duplications."""

    @st.composite
    def edits(draw: st.DrawFn) -> str:
        out = text
        for _ in range(draw(st.integers(1, 6))):
            if not out:
                out = draw(st.text(max_size=10))
                continue
            i = draw(st.integers(0, len(out)))
            j = draw(st.integers(i, min(len(out), i + 12)))
            kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "swap"]))
            piece = draw(
                st.one_of(st.sampled_from(NASTY), st.text(max_size=6), st.sampled_from(list(string.punctuation)))
            )
            if kind == "delete":
                out = out[:i] + out[j:]
            elif kind == "insert":
                out = out[:i] + piece + out[i:]
            elif kind == "replace":
                out = out[:i] + piece + out[j:]
            elif kind == "duplicate":
                out = out[:j] + out[i:j] + out[j:]
            else:
                out = out[:i] + out[j:] + out[i:j]
        return out

    return edits()


def words_joined(words: st.SearchStrategy[str], max_size: int = 20) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(words, max_size=max_size), st.sampled_from([" ", "", "  ", "\t"])).map(
        lambda t: t[1].join(t[0])
    )


# ---------------------------------------------------------------- conditions

EVENTS = ["fetch-feeds", "publish", "a", "b.c_d-e", "x" * 64, "x" * 65, "Upper", "9lives"]
CONDITION_WORDS = [
    "success",
    "failure",
    "done",
    "running",
    "notrunning",
    "exitcode",
    "exists",
    "and",
    "or",
    "not",
    "AND",
    "Or",
    "NOT",
    *EVENTS,
    "0",
    "1",
    "-3",
    "256",
    "12h",
    '"12h"',
    "'5m'",
    '"0s"',
    '"-1h"',
    "==",
    "!=",
    "<",
    ">=",
    "<=",
    ">",
    "=",
    "&&",
    "||",
    "!",
    "(",
    ")",
    ",",
    '"feeds/*.json"',
    '""',
    "'",
    '"',
    "os.system",
    "__import__",
    "lambda",
    "x.y",
    "1.5",
]
VALID_CONDITIONS = [
    "success(fetch-feeds)",
    'success(fetch-feeds, "12h") and not running(publish)',
    "(done(a) or failure(b.c_d-e)) and exitcode(a) == 0",
    'exists("feeds/*.json") or notrunning(a)',
    "not (success(a) and success(publish)) or exitcode(publish, '2h') != 3",
    "exitcode(a) >= 2 and exitcode(a) < 100 or done(a, 90s)",
]

conditions = st.one_of(
    words_joined(st.one_of(st.sampled_from(CONDITION_WORDS), st.sampled_from(NASTY))),
    st.sampled_from(VALID_CONDITIONS).flatmap(_mutate),
    st.integers(1, 200).map(lambda n: "(" * n + "success(a)" + ")" * n),
    st.integers(1, 400).map(lambda n: " and ".join(["success(a)"] * n)),
    st.integers(1, 400).map(lambda n: "not " * n + "success(a)"),
    st.text(max_size=40),
)


class _View:
    """A state view that answers from the draw: every evaluation path gets exercised."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def last_finished(self, event: str) -> Finished | None:
        pick = (hash(event) + self.seed) % 5
        if pick == 0:
            return None
        state = [RunState.SUCCEEDED, RunState.FAILED, RunState.KILLED, RunState.LOST][pick - 1]
        return Finished(state, datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=pick), pick - 1)

    def is_running(self, event: str) -> bool:
        return (hash(event) + self.seed) % 2 == 0

    def path_exists(self, path: str) -> bool:
        return len(path) % 2 == 0

    def group_members(self, group: str) -> list[str]:
        return [f"{group}-{i}" for i in range((hash(group) + self.seed) % 4)]

    def is_waiting(self, event: str) -> bool:
        return (hash(event) + self.seed) % 3 == 0


def check_condition(text: str, seed: int = 0) -> None:
    TRIED["requires conditions"] += 1
    try:
        cond = parse_condition(text)
    except ConditionError as exc:
        message = str(exc)
        assert message.startswith("requires: "), message
        assert exc.column is not None or "empty" in message or "expected a string" in message, message
        return
    ACCEPTED["requires conditions"] += 1
    holds, reason = evaluate(cond, _View(seed), datetime(2026, 1, 1, tzinfo=UTC))
    assert isinstance(holds, bool) and (reason is None or isinstance(reason, str))
    again = parse_condition(render(cond.tree))  # what reasons quote parses back to the same tree
    assert again.tree == cond.tree, (text, render(cond.tree))


# ---------------------------------------------------------------- durations and times of day

UNITS = ["d", "h", "m", "s", "ms", "", "D", "sec", "min", "us", "w"]
duration_texts = st.one_of(
    st.lists(
        st.tuples(
            st.one_of(
                st.integers(0, 10**6).map(str),
                st.floats(0, 1e6).map(lambda f: f"{f:g}"),
                st.sampled_from(["", ".", "1.", ".5", "-1", "1e3", "1_000", "٣"]),
            ),
            st.sampled_from(UNITS),
            st.sampled_from(["", " ", "  "]),
        ),
        max_size=6,
    ).map(lambda parts: "".join(n + sp + u for n, u, sp in parts)),
    st.sampled_from(["90s", "5m", "2h30m", "1d2h", "500ms", "1.5s"]).flatmap(_mutate),
    st.text(max_size=20),
)
durations = st.one_of(
    duration_texts,
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
times_of_day = st.one_of(
    st.tuples(st.integers(-3, 100), st.integers(-3, 100), st.sampled_from([":", "", ".", "h", " : "])).map(
        lambda t: f"{t[0]}{t[2]}{t[1]:02d}"
    ),
    st.sampled_from(["06:30", "6:30", "23:59", "00:00", "24:00", "12:60"]).flatmap(_mutate),
    st.text(max_size=10),
    st.integers(),
    st.none(),
    st.times(),
)


def check_duration(value: Any) -> None:
    TRIED["durations"] += 1
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        assert "Invalid duration" in str(exc) and quoted(value) in str(exc) and len(str(exc)) < 600, str(exc)
        return
    ACCEPTED["durations"] += 1
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0, (value, seconds)
    shown = format_duration(seconds)  # what messages print must read back, near enough
    back = parse_duration(shown)
    assert abs(back - seconds) <= 0.05 * seconds + 0.0005, (value, seconds, shown, back)


def check_time_of_day(value: Any) -> None:
    TRIED["times of day"] += 1
    try:
        hour, minute = parse_time_of_day(value)
    except TimeOfDayError as exc:
        assert "Invalid time of day" in str(exc) and quoted(value) in str(exc) and len(str(exc)) < 600, str(exc)
        return
    ACCEPTED["times of day"] += 1
    assert 0 <= hour <= 23 and 0 <= minute <= 59


# ---------------------------------------------------------------- schedules

NAMES = ["jan", "FEB", "mar", "dec", "mon", "Sun", "sat", "foo"]
cron_atom = st.one_of(
    st.just("*"),
    st.integers(-2, 70).map(str),
    st.sampled_from(NAMES),
    st.sampled_from(["L", "LW", "?", "15W", "0W", "32W", "5L", "1#3", "5#6", "7", "0"]),
    st.text(alphabet="0123456789*/-,LW#?", min_size=1, max_size=5),
)
cron_field = st.one_of(
    cron_atom,
    st.tuples(cron_atom, cron_atom).map("-".join),
    st.tuples(cron_atom, st.integers(-1, 70)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.lists(cron_atom, min_size=2, max_size=4).map(",".join),
)
cron_specs = st.lists(cron_field, min_size=3, max_size=7).map(" ".join)
every_specs = st.tuples(
    st.sampled_from(["every", "Every", "EVERY", "every  "]),
    st.one_of(
        st.just(""),
        st.integers(-1, 10**7).map(str),
        st.integers(10**7, 10**40).map(str),
        st.sampled_from(["0", "1.5", "two"]),
    ),
    st.sampled_from(
        [
            "second",
            "seconds",
            "minute",
            "minutes",
            "hour",
            "hours",
            "day",
            "days",
            "week",
            "weeks",
            "monday",
            "Friday",
            "sunday",
            "fortnight",
            "month",
        ]
    ),
    st.one_of(
        st.just(""),
        st.tuples(st.just("at"), times_of_day.map(str)).map(" ".join),
        st.sampled_from(["at 06:30", "at 6:30:15", "at 25:00", "at :30", "at 06:30 UTC"]),
    ),
).map(lambda t: " ".join(p for p in t if p))
at_specs = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([None, UTC])
    ).map(lambda d: f"at {d.isoformat()}"),
    st.text(max_size=25).map(lambda t: "at " + t),
)
schedule_specs = st.one_of(
    cron_specs,
    every_specs,
    at_specs,
    st.sampled_from(
        [
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@reboot",
            "@every",
            "@",
            "@DAILY",
        ]
    ),
    st.sampled_from(
        [
            "*/15 * * * *",
            "0 6 * * mon-fri",
            "30 2 * * *",
            "0 0 L * *",
            "0 9 15W * *",
            "0 9 * * 5#3",
            "every 15 minutes",
            "every day at 06:30",
            "at 2026-12-01T09:00",
        ]
    ).flatmap(_mutate),
    st.text(max_size=30),
)
ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Apia",
    "America/Santiago",
    "Antarctica/Troll",
    "Africa/Casablanca",
]
BAD_ZONES = ["", "Mars/Olympus", "../../etc/passwd", "UTC ", "utc", "Europe/", "\x00"]


def check_schedule(spec: str, after: datetime, zone: str, span_h: int) -> None:
    TRIED["schedules"] += 1
    try:
        parse_schedule(spec)
    except ScheduleError as exc:
        assert str(exc).startswith(f"Bad schedule {quoted(spec)}:") and len(str(exc)) < 1500, str(exc)
        return
    ACCEPTED["schedules"] += 1
    try:
        nxt = next_fire(spec, after, zone)
    except ScheduleError as exc:
        assert zone in BAD_ZONES and "Unknown time zone" in str(exc), (spec, zone, str(exc))
        return
    assert zone not in BAD_ZONES, f"bad zone {zone!r} accepted"
    assert nxt is None or (nxt.tzinfo is not None and nxt > after), (spec, after, zone, nxt)
    until = after + timedelta(hours=span_h)
    fires = fires_between(spec, after, until, zone, limit=20)
    assert all(after < f <= until for f in fires), (spec, after, zone, fires)
    assert fires == sorted(set(fires)), (spec, after, zone, fires)
    if fires and nxt is not None:
        assert fires[0] == nxt, (spec, after, zone, fires[0], nxt)
    for fire in preview(spec, zone, after, 3):
        assert fire.utc > after and fire.local.utcoffset() is not None


# ---------------------------------------------------------------- crontabs


def _sample_crontabs() -> list[str]:
    files = [*sorted((DATA / "crontabs").iterdir()), *sorted((DATA / "cron.d").iterdir())]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files if p.is_file()]


command_texts = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=40),
    words_joined(
        st.sampled_from(
            [
                "echo",
                "hi",
                "/usr/bin/backup.sh",
                "--x",
                "%",
                "\\%",
                "$(touch pwned)",
                "`id`",
                ";",
                "&&",
                "|",
                ">",
                "2>&1",
                "'a b'",
                '"c d"',
                "cd",
                "/tmp",
                "test",
                "-x",
                "run-parts",
                "sleep",
                "$((RANDOM % 60))",
                "#",
                "x=1",
            ]
        ),
        max_size=10,
    ),
)
env_lines = st.tuples(
    st.one_of(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
        st.sampled_from(["MAILTO", "CRON_TZ", "SHELL", "PATH", "TZ", '"Q N"', "1X"]),
        st.text(max_size=5),
    ),
    st.sampled_from(["=", " = ", "= ", " ="]),
    st.one_of(
        st.text(max_size=15).filter(lambda t: "\n" not in t),
        st.sampled_from(
            ["Europe/London", "Mars/Base", '"quoted value"', "'single'", "/bin/bash", "/bin/sh", "$(touch pwned)", ""]
        ),
    ),
).map("".join)
entry_lines = st.tuples(
    st.one_of(cron_specs, st.sampled_from(["@daily", "@reboot", "@hourly", "@weekly", "@fortnightly"])),
    st.one_of(st.just(""), st.sampled_from(["root", "www-data", "nobody", "no-such-user-x", "1bad"])),
    command_texts,
).map(lambda t: " ".join(p for p in t if p))
crontab_lines = st.one_of(
    entry_lines,
    entry_lines,
    entry_lines,
    env_lines,
    st.sampled_from(
        [
            "",
            "# a comment",
            "#",
            "# evman: name=nightly-backup",
            "# evman: name=Bad Name",
            "# evman: bogus",
            "   ",
            "\t# indented",
            "@reboot",
            "* * * *",
        ]
    ),
    st.text(max_size=30).filter(lambda t: "\n" not in t),
)
crontab_texts = st.one_of(
    st.tuples(st.lists(crontab_lines, max_size=12), st.sampled_from(["\n", "\r\n"]), st.booleans()).map(
        lambda t: ("\ufeff" if t[2] else "") + t[1].join(t[0])
    ),
    st.sampled_from(_sample_crontabs()).flatmap(_mutate),
    st.text(max_size=80),
)


def check_crontab(text: str, system: bool | None, skip_invalid: bool, tmp: Path) -> None:
    TRIED["crontabs"] += 1
    try:
        imported = parse_crontab(text, source="fuzz.cron", system=system, skip_invalid=skip_invalid)
    except CrontabError as exc:
        lines = str(exc).split("\n")
        assert lines and all(line.startswith("fuzz.cron") for line in lines), str(exc)
        assert exc.problems and all(isinstance(n, int) and n >= 0 for n, _ in exc.problems)
        return
    ACCEPTED["crontabs"] += 1
    for lineno, why in imported.skipped:
        assert lineno >= 0 and why
    # what the importer produces, `evman import-crontab` validates and loads: it must pass, or be
    # refused only for a user this machine does not have
    try:
        parse_definitions(tomli_w.dumps({"event": imported.events}), source="fuzz.cron", base_dir=tmp)
    except DefinitionsError as exc:
        others = [p for p in exc.problems if "key 'user'" not in p]
        assert not others, "\n".join(others)


# ---------------------------------------------------------------- definitions

GOOD = (DATA / "defs" / "good.toml").read_text()
KEYS_POOL = [
    "name",
    "run",
    "shell",
    "call",
    "http",
    "cwd",
    "env",
    "schedule",
    "timezone",
    "requires",
    "window",
    "late_after",
    "runtime",
    "outputs",
    "on_success",
    "on_failure",
    "driver",
    "concurrency",
    "misfire",
    "user",
    "description",
    "stdin",
    "timeout",
    "Name",
    "runn",
    "",
    "url",
    "method",
    "expect",
    "earliest",
    "latest",
    "min",
    "max",
    "kill",
    "path",
    "retries",
    "backoff",
    "prepare",
    "trigger",
    "alert",
    "urls",
    "quiet",
    "from",
    "to",
    "escalate_to",
    "escalate_after",
    "repeat",
    "max_repeats",
    "fresh",
    "contains",
    "json",
    "min_size",
    "max_age",
]
STRINGS = [
    "fetch-feeds",
    "publish",
    "ops",
    "lead",
    "true",
    "echo hi",
    "python x.py 'a b",
    "a:b",
    "mod.sub:fn",
    "http://127.0.0.1:9/",
    "https://h.example/x",
    "ftp://x",
    "json://127.0.0.1:9/",
    "mailto://u:secret@example.com",
    "bogus://x",
    "06:30",
    "25:00",
    "6:3",
    "*/15 * * * *",
    "every 5 minutes",
    "@daily",
    "skip",
    "queue",
    "replace",
    "once",
    "all",
    "sometimes",
    "Europe/London",
    "Mars/Base",
    "90s",
    "5m",
    "-1s",
    "0s",
    "success(fetch-feeds)",
    "success(nope)",
    "((",
    "root",
    "nobody",
    "no-such-user-x",
    "a{99999999999}",
    "(?P<",
    "[",
    "POST",
    "post",
    "BREW",
    ".",
    "/",
    "~",
    "~nouser/x",
    "feeds/*.json",
    "",
]


def _toml_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(STRINGS),
        st.sampled_from(NASTY),
        st.text(max_size=12),
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-3, 1000),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.dates(),
        st.times(),
        st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([None, UTC])
        ),
    )


toml_values = st.recursive(
    _toml_scalars(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS_POOL), inner, max_size=4)
    ),
    max_leaves=10,
)


def _event_tables() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.one_of(
                st.sampled_from(["fetch-feeds", "publish", "a", "b"]), st.sampled_from(STRINGS), st.text(max_size=8)
            )
        },
        optional={
            "run": st.one_of(st.sampled_from(STRINGS), st.lists(st.sampled_from(STRINGS), max_size=3), toml_values),
            "shell": st.sampled_from(STRINGS),
            "call": st.sampled_from(STRINGS),
            "http": st.fixed_dictionaries(
                {"url": st.sampled_from(STRINGS)},
                optional={"method": st.sampled_from(STRINGS), "expect": st.integers(0, 1000), "timeout": toml_values},
            ),
            "schedule": st.one_of(schedule_specs, toml_values),
            "requires": st.one_of(conditions, st.sampled_from(VALID_CONDITIONS)),
            "timezone": st.sampled_from(ZONES + BAD_ZONES),
            "window": st.dictionaries(
                st.sampled_from(["earliest", "latest", "late"]),
                st.one_of(times_of_day.map(str), toml_values),
                max_size=3,
            ),
            "late_after": st.one_of(times_of_day.map(str), st.times()),
            "runtime": st.dictionaries(
                st.sampled_from(["min", "max", "kill", "avg"]),
                st.one_of(duration_texts, st.booleans(), toml_values),
                max_size=3,
            ),
            "timeout": st.one_of(duration_texts, toml_values),
            "outputs": st.lists(
                st.dictionaries(
                    st.sampled_from(["path", "fresh", "min_size", "max_age", "contains", "json", "size"]),
                    toml_values,
                    max_size=4,
                ),
                max_size=2,
            ),
            "on_success": st.one_of(
                st.lists(st.sampled_from(["fetch-feeds", "publish", "a", "nope"]), max_size=3), toml_values
            ),
            "on_failure": st.dictionaries(
                st.sampled_from(["retries", "backoff", "backoff_max", "prepare", "trigger", "alert", "retry"]),
                toml_values,
                max_size=4,
            ),
            "env": st.dictionaries(st.text(max_size=5), toml_values, max_size=3),
            "concurrency": st.sampled_from(STRINGS),
            "misfire": st.sampled_from(STRINGS),
            "driver": st.sampled_from(STRINGS),
            "user": st.sampled_from(STRINGS),
            "cwd": st.sampled_from(STRINGS),
            "stdin": toml_values,
            "description": toml_values,
            "bogus": toml_values,
        },
    )


definition_documents = st.fixed_dictionaries(
    {},
    optional={
        "defaults": st.dictionaries(
            st.sampled_from(["timezone", "driver", "repeat", "max_repeats", "color"]),
            st.one_of(st.sampled_from(ZONES + STRINGS), toml_values),
            max_size=4,
        ),
        "routes": st.dictionaries(
            st.sampled_from(["ops", "lead", "day", ""]),
            st.one_of(
                st.lists(st.sampled_from(STRINGS), max_size=2),
                st.dictionaries(st.sampled_from(KEYS_POOL), toml_values, max_size=3),
            ),
            max_size=3,
        ),
        "event": st.lists(_event_tables(), max_size=4),
        "extra": toml_values,
    },
)

VALID_SCHEDULES = [
    "*/15 * * * *",
    "0 6 * * mon-fri",
    "30 2 * * *",
    "0 0 L * *",
    "0 9 15W * *",
    "@daily",
    "@reboot",
    "every 15 minutes",
    "every 2 seconds",
    "every day at 06:30",
    "every monday at 09:00",
    "at 2026-12-01T09:00",
    "at 2026-12-01T09:00+01:00",
]
VALID_DURATIONS = ["90s", "5m", "2h30m", "1d", "500ms", "1.5s", "0s", 30, 2.5]
VALID_TIMES = ["06:00", "6:30", "22:00", "00:00", "23:59", time(7, 15)]


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Definitions that are valid, or nearly: most keys set to good values, so that the deep
    paths (cycles, export, the JSON round trip, the catalog) see many inputs."""
    names = draw(
        st.lists(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True), min_size=1, max_size=5, unique=True)
    )
    routes = {
        "ops": ["json://127.0.0.1:9/", "mailto://user:s3cret@example.com"],
        "lead": {
            "urls": ["json://localhost:10/?token=abc"],
            "quiet": {"from": "22:00", "to": "07:00"},
            "escalate_to": "ops",
            "escalate_after": "20m",
        },
    }
    events = []
    for index, name in enumerate(names):
        later = names[index + 1 :]  # links only forward: no cycles unless a mutation adds one
        event: dict[str, Any] = {"name": name}
        action = draw(st.sampled_from(["run", "run-list", "shell", "call", "http"]))
        if action == "run":
            event["run"] = draw(
                st.sampled_from(["true", "echo 'a b' c", "python x.py --out 'f g.json'", "echo a;b $(x)"])
            )
        elif action == "run-list":
            event["run"] = draw(
                st.lists(
                    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=6),
                    min_size=1,
                    max_size=3,
                ).filter(lambda a: a[0])
            )
        elif action == "shell":
            event["shell"] = draw(st.sampled_from(["echo hi | wc -l", "exit 3", "true && false"]))
        elif action == "call":
            event["call"] = draw(st.sampled_from(["reports.publish:main", "a.b.c:d.e"]))
        else:
            event["http"] = draw(
                st.fixed_dictionaries(
                    {"url": st.sampled_from(["http://127.0.0.1:9/x", "https://h.example/hook?token=abc"])},
                    optional={
                        "method": st.sampled_from(["get", "POST", "put"]),
                        "expect": st.integers(100, 599),
                        "body": st.text(
                            alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=10
                        ),
                        "headers": st.dictionaries(
                            st.sampled_from(["Authorization", "X-Token", "Accept"]),
                            st.sampled_from(["Bearer abc", "json", "1"]),
                            max_size=2,
                        ),
                        "timeout": st.sampled_from(VALID_DURATIONS[:4]),
                    },
                )
            )
        optional = {
            "schedule": st.sampled_from(VALID_SCHEDULES),
            "timezone": st.sampled_from(ZONES),
            "window": st.fixed_dictionaries(
                {}, optional={"earliest": st.sampled_from(VALID_TIMES), "latest": st.sampled_from(VALID_TIMES)}
            ),
            "late_after": st.sampled_from(VALID_TIMES),
            "runtime": st.fixed_dictionaries(
                {},
                optional={
                    "min": st.sampled_from(VALID_DURATIONS),
                    "max": st.sampled_from(VALID_DURATIONS[:4]),
                    "kill": st.booleans(),
                },
            ),
            "timeout": st.sampled_from(VALID_DURATIONS[:4]),
            "outputs": st.lists(
                st.fixed_dictionaries(
                    {"path": st.sampled_from(["out.json", "logs/*.log", "/tmp/x"])},
                    optional={
                        "fresh": st.booleans(),
                        "min_size": st.integers(0, 10**6),
                        "max_age": st.sampled_from(VALID_DURATIONS),
                        "contains": st.sampled_from(["items", r"\d+", "^ok$"]),
                        "json": st.booleans(),
                    },
                ),
                max_size=2,
            ),
            "env": st.dictionaries(
                st.from_regex(r"[A-Z_]{1,6}", fullmatch=True),
                st.one_of(st.sampled_from(["1", "a b", "$(x)"]), st.integers(0, 99)),
                max_size=2,
            ),
            "on_failure": st.fixed_dictionaries(
                {},
                optional={
                    "retries": st.integers(0, 5),
                    "backoff": st.sampled_from(VALID_DURATIONS[:4]),
                    "backoff_max": st.sampled_from(["1h", "10m"]),
                    "prepare": st.sampled_from(["rm -f x.lock", "true"]),
                    "trigger": st.lists(st.sampled_from(later), max_size=2, unique=True) if later else st.just([]),
                    "alert": st.sampled_from(["ops", "lead"]),
                },
            ),
            "driver": st.sampled_from(["ops", "lead"]),
            "concurrency": st.sampled_from(["skip", "queue", "replace"]),
            "misfire": st.sampled_from(["once", "all", "skip"]),
            "user": st.sampled_from(["root", "nobody"]),
            "description": st.text(max_size=10).filter(lambda t: "\x00" not in t),
            "stdin": st.sampled_from(["line one\nline two\n", "%"]),
            "cwd": st.sampled_from([".", "sub", "/tmp"]),
        }
        if later:
            optional["on_success"] = st.lists(st.sampled_from(later), max_size=2, unique=True)
            optional["requires"] = st.sampled_from(later).flatmap(
                lambda e: st.sampled_from(
                    [
                        f"success({e})",
                        f'success({e}, "12h") and not running({e})',
                        f"exitcode({e}) != 2 or done({e})",
                        f'exists("x/*.json") or failure({e})',
                    ]
                )
            )
        for key, strategy in optional.items():
            if draw(st.booleans()):
                event[key] = draw(strategy)
        events.append(event)
    document: dict[str, Any] = {
        "defaults": {
            "timezone": draw(st.sampled_from(ZONES)),
            "driver": "ops",
            "repeat": "45m",
            "max_repeats": draw(st.integers(0, 20)),
        },
        "routes": routes,
        "event": events,
    }
    return document


definition_texts = st.one_of(
    definition_documents.map(tomli_w.dumps),
    valid_documents().map(tomli_w.dumps),
    valid_documents().map(tomli_w.dumps),
    valid_documents().map(tomli_w.dumps).flatmap(_mutate),
    st.just(GOOD).flatmap(_mutate),
    st.text(max_size=60),
)


def check_definitions(text: str, base_dir: Path) -> None:
    TRIED["definitions files"] += 1
    try:
        defs = parse_definitions(text, source="fuzz.toml", base_dir=base_dir)
    except DefinitionsError as exc:
        assert exc.problems, "an error without problems"
        for line in exc.problems:
            assert re.match(r"fuzz\.toml:\d+(:\d+)?: .....", line), line  # every problem names its line
        return
    ACCEPTED["definitions files"] += 1
    for spec in defs.events:
        assert spec_from_json(spec_to_json(spec)) == spec, spec.name
    exported = export_toml(defs, include_secrets=True)
    again = parse_definitions(exported, source="fuzz.toml", base_dir=base_dir)
    assert again == defs, f"export does not load back to the same definitions:\n{exported}"
    store = open_store(memory=True)
    try:
        catalog.save(store, defs, now=datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
        assert store.event_names() == {s.name for s in defs.events}
    finally:
        store.close()
