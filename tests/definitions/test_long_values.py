"""No error echoes huge input: a quoted user value past 80 characters is cut, with its length."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evman.engine.conditions import ConditionError, parse_condition
from evman.engine.crontab import CrontabError, parse_crontab
from evman.engine.definitions import DefinitionsError, parse_definitions
from evman.engine.quoting import clipped, quoted
from evman.engine.timing.durations import DurationError, TimeOfDayError, parse_duration, parse_time_of_day
from evman.engine.timing.schedules import ScheduleError, next_fire, parse_schedule
from tests.outside import ROOT, evman_argv

HUGE = "a" * 100_000
SHOWN = "(100,000 characters)"
EVENT = '[[event]]\nname = "ok"\nrun = "true"\n'


def test_quoted_keeps_short_values_and_cuts_long_ones() -> None:
    assert quoted("fetch-feeds") == "'fetch-feeds'"
    assert quoted("a" * 80) == "'" + "a" * 80 + "'"
    assert quoted(HUGE) == "'" + "a" * 80 + "…' (100,000 characters)"
    assert quoted(HUGE, style="json") == '"' + "a" * 80 + '…" (100,000 characters)'
    assert quoted("line\nbreak") == "'line\\nbreak'"  # a value cannot split a message's line
    assert quoted(12.5) == "12.5" and clipped(HUGE) == "a" * 80 + "… (100,000 characters)"


DEFINITIONS = [
    # (TOML with the huge value, the key the one problem names)
    (f'[[event]]\nname = "{HUGE}"\nrun = "true"\n', "key 'name'"),
    (f'{EVENT}schedule = "{HUGE}"\n', "key 'schedule'"),
    (f'{EVENT}requires = "success({HUGE})"\n', "key 'requires'"),
    (f'{EVENT}requires = "{HUGE}(x)"\n', "key 'requires'"),
    (f'{EVENT}runtime = {{ max = "{HUGE}" }}\n', "key 'runtime.max'"),
    (f'{EVENT}deadline = "{HUGE}"\n', "key 'deadline'"),
    (f'{EVENT}window = {{ earliest = "{HUGE}" }}\n', "key 'window.earliest'"),
    (f'{EVENT}timezone = "{HUGE}"\n', "key 'timezone'"),
    (f'{EVENT}misfire = "{HUGE}"\n', "key 'misfire'"),
    (f'{EVENT}hosts = ["{HUGE}"]\n', "key 'hosts[0]'"),
    (f'{EVENT}on_success = ["{HUGE}"]\n', "key 'on_success'"),
    (f"{EVENT}{HUGE} = 1\n", "unknown key"),
    (f"{HUGE} = 1\n", "unknown top-level key"),
    (f'[routes]\n{HUGE} = ["json://h/"]\n[defaults]\ndriver = "{HUGE}x"\n', "key 'driver'"),
]


@pytest.mark.parametrize(("text", "key"), DEFINITIONS, ids=[d[1] + f"-{i}" for i, d in enumerate(DEFINITIONS)])
def test_definitions_problems_cut_huge_values(text: str, key: str, tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(text, source="huge.toml", base_dir=tmp_path)
    for problem in caught.value.problems:
        assert len(problem) < 1000, problem[:300]
    assert any(key in problem and "characters)" in problem for problem in caught.value.problems), caught.value


@pytest.mark.parametrize(
    ("text", "system"),
    [
        (f"0 1 * * * root /bin/true\n0 2 * * * {HUGE}\n", True),  # not a user name
        (f"{HUGE} * * * * /bin/true\n", None),  # a minute field
        (f"@{HUGE} /bin/true\n", None),  # an unknown macro
        (f"# evman: name={HUGE}\n0 1 * * * /bin/true\n", None),
        (f'"unterminated = {HUGE}\n0 1 * * * /bin/true\n', None),
        (f"CRON_TZ={HUGE}\n0 1 * * * /bin/true\n", None),  # too long even for a file name
        (f"[{HUGE}]\n", None),  # looks like TOML
    ],
)
def test_crontab_problems_cut_huge_values(text: str, system: bool | None) -> None:
    with pytest.raises(CrontabError) as caught:
        parse_crontab(text, source="huge-tab", system=system)
    assert len(str(caught.value)) < 1500, str(caught.value)[:300]
    assert "characters)" in str(caught.value), str(caught.value)[:300]


def test_conditions_schedules_durations_and_times_cut_huge_values() -> None:
    for call, error in [
        (lambda: parse_condition(f"success(x) and {HUGE}"), ConditionError),
        (lambda: parse_condition(f'exists("x") {HUGE}'), ConditionError),
        (lambda: parse_schedule(HUGE), ScheduleError),
        (lambda: parse_schedule(f"at {HUGE}"), ScheduleError),
        (lambda: next_fire("@daily", datetime(2026, 1, 1, tzinfo=UTC), HUGE), ScheduleError),
        (lambda: parse_duration(HUGE), DurationError),
        (lambda: parse_duration("9" * 100_000 + "q"), DurationError),
        (lambda: parse_time_of_day(HUGE), TimeOfDayError),
    ]:
        with pytest.raises(error) as caught:
            call()
        assert len(str(caught.value)) < 1500 and "characters)" in str(caught.value), str(caught.value)[:300]


def evman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(evman_argv(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_cli_never_echoes_a_huge_value(tmp_path: Path) -> None:
    """The issue's case: a 100,000-character event name was printed twice (~200 KB on stderr)."""
    defs = tmp_path / "huge.toml"
    defs.write_text(f'[[event]]\nname = "{HUGE}"\nrun = "true"\n')
    db = tmp_path / "evman.db"
    good = tmp_path / "good.toml"
    good.write_text(EVENT)
    assert evman("load", str(good), "--db", str(db)).returncode == 0
    for args in (
        ["validate", str(defs)],
        ["load", str(defs), "--db", str(db)],
        ["show", HUGE, "--db", str(db)],
        ["next", "--schedule", HUGE],
        ["next", "--schedule", "@daily", "--after", HUGE],
    ):
        done = evman(*args)
        assert done.returncode in (1, 2), (args[0], done.returncode)
        assert len(done.stderr) < 2000 and SHOWN in done.stderr, (args[0], done.stderr[:300])
