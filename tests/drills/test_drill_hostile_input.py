"""Hostile input drill: generated and mutated definitions files, `requires` conditions,
durations, times of day, schedules and crontabs. Each parser accepts an input (and what it
returns works: evaluates, fires, exports and loads back) or refuses it with its own error type
and a message naming the place; never another exception. A refused `evman load` leaves the
database as it was.

Short form: a few hundred inputs per parser in every `uv run pytest`; long form (thousands per
parser): `uv run pytest tests/drills -m long -n 0`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.drills import hostile
from tests.drills.common import REPORTS, cli, content_digest

SHORT = 250
LONG = 5000


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, print_blob=True, suppress_health_check=list(HealthCheck)
    )


def _conditions(n: int) -> None:
    @_settings(n)
    @given(hostile.conditions, st.integers(0, 7))
    def run(text: str, seed: int) -> None:
        hostile.check_condition(text, seed)

    run()


def _durations(n: int) -> None:
    @_settings(n)
    @given(hostile.durations)
    def run(value: object) -> None:
        hostile.check_duration(value)

    run()


def _times_of_day(n: int) -> None:
    @_settings(n)
    @given(hostile.times_of_day)
    def run(value: object) -> None:
        hostile.check_time_of_day(value)

    run()


def _schedules(n: int) -> None:
    @_settings(n)
    @given(
        hostile.schedule_specs,
        st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
        st.sampled_from(hostile.ZONES + hostile.BAD_ZONES),
        st.integers(0, 24 * 800),
    )
    def run(spec: str, after: datetime, zone: str, span_h: int) -> None:
        hostile.check_schedule(spec, after, zone, span_h)

    run()


def _crontabs(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:

        @_settings(n)
        @given(hostile.crontab_texts, st.sampled_from([None, True, False]), st.booleans())
        def run(text: str, system: bool | None, skip_invalid: bool) -> None:
            hostile.check_crontab(text, system, skip_invalid, Path(tmp))

        run()


def _definitions(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:

        @_settings(n)
        @given(hostile.definition_texts)
        def run(text: str) -> None:
            hostile.check_definitions(text, Path(tmp))

        run()


PARSERS: dict[str, Callable[[int], None]] = {
    "conditions": _conditions,
    "durations": _durations,
    "times-of-day": _times_of_day,
    "schedules": _schedules,
    "crontabs": _crontabs,
    "definitions": _definitions,
}


def _numbers(form: str) -> None:
    tried = ", ".join(f"{k} {v} ({hostile.ACCEPTED[k]} accepted)" for k, v in sorted(hostile.TRIED.items()))
    REPORTS.append(f"hostile input ({form}): {sum(hostile.TRIED.values())} inputs tried: {tried}")


@pytest.mark.parametrize("parser", list(PARSERS))
def test_hostile_input_short(parser: str) -> None:
    PARSERS[parser](SHORT)


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("parser", list(PARSERS))
def test_hostile_input_long(parser: str) -> None:
    PARSERS[parser](LONG)


@pytest.fixture(scope="module", autouse=True)
def report_numbers(request: pytest.FixtureRequest):
    hostile.TRIED.clear()
    hostile.ACCEPTED.clear()
    yield
    if hostile.TRIED:
        _numbers("this run")


# -- what the long form found, kept as plain examples ---------------------------------------------


@pytest.mark.parametrize(
    "check, args",
    [
        (hostile.check_duration, ("0\x1f",)),  # \s matched it, float() did not: ValueError
        (hostile.check_duration, (1.797693134862316e305,)),  # finite, then format/timedelta overflowed
        (hostile.check_duration, ("100000000000000000000s",)),
        (hostile.check_schedule, ("every 9999999999999999999 hours", datetime(2030, 1, 1, tzinfo=UTC), "UTC", 24)),
        (hostile.check_condition, ('success(a, "99999999999999d")',)),
        (hostile.check_definitions, ('[[event]]\nname = "a"\nrun = "true"\ncwd = "~no-such-user-zz/x"\n', Path("/"))),
        (hostile.check_definitions, ('[[event]]\nname = "a"\nrun = "echo a\\u0000b"\n', Path("/"))),
        (hostile.check_definitions, ('[[event]]\nname = "a"\nshell = "true"\ncwd = "x\\u0000y"\n', Path("/"))),
        (
            hostile.check_definitions,
            ('[[event]]\nname = "a"\nrun = "true"\non_failure = { retries = 5000 }\n', Path("/")),
        ),
    ],
    ids=[
        "duration-0x1f",
        "duration-1e305",
        "duration-1e20s",
        "every-huge",
        "lookback-huge",
        "cwd-unknown-user",
        "run-nul",
        "cwd-nul",
        "many-retries",
    ],
)
def test_inputs_the_drill_found(check: Callable[..., None], args: tuple) -> None:
    check(*args)


def test_many_retries_do_not_overflow_the_backoff() -> None:
    from evman.engine.engine import backoff_for
    from evman.engine.model import EventSpec, OnFailure

    spec = EventSpec(name="a", run=("true",), on_failure=OnFailure(retries=5000, backoff_s=30, backoff_max_s=600))
    assert backoff_for(spec, 4999).total_seconds() == 600


# -- a refused load writes nothing ------------------------------------------------------------------

BASE = """
[defaults]
timezone = "UTC"

[routes]
ops = ["json://127.0.0.1:9/"]

[[event]]
name = "fetch-feeds"
run = "true"
schedule = "*/5 * * * *"
"""


def _refused_load_leaves_the_database(n: int, tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    (tmp_path / "base.toml").write_text(BASE)
    assert cli("load", str(tmp_path / "base.toml"), "--db", str(db)).returncode == 0
    assert cli("trigger", "fetch-feeds", "--db", str(db)).returncode == 0
    before = content_digest(db)
    bad = tmp_path / "bad.toml"
    refused = 0

    @_settings(n)
    @given(hostile.definition_texts)
    def run(text: str) -> None:
        nonlocal refused
        hostile.TRIED["refused loads"] += 1
        bad.write_text(text, encoding="utf-8", errors="surrogatepass")
        done = cli("load", str(bad), "--db", str(db))
        if done.returncode == 0:  # a valid file: it loads; start again from the base content
            return
        refused += 1
        assert done.returncode == 2, (done.returncode, done.stderr)
        assert "Traceback" not in done.stderr
        assert content_digest(db) == before, "a refused load changed the database"

    def reset_if_loaded() -> None:
        if content_digest(db) != before:
            pytest.fail("a valid load slipped in: the property run must restore the base")

    run()
    reset_if_loaded()
    assert refused > n // 4, f"only {refused} of {n} files were refused: the generator lost its teeth"


def test_a_refused_load_leaves_the_database_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_refused(monkeypatch)
    _refused_load_leaves_the_database(60, tmp_path)


@pytest.mark.long
@pytest.mark.timeout(3600)
def test_a_refused_load_leaves_the_database_as_it_was_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_refused(monkeypatch)
    _refused_load_leaves_the_database(1500, tmp_path)


def _only_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the generated files refused: every one gets an event with a broken key appended,
    so the drill measures refusals (a valid file would change the database, rightly)."""
    broken = st.tuples(
        hostile.definition_texts,
        st.sampled_from(
            [
                '\n[[event]]\nname = "zz-broken"\nrun = "true"\nschedule = "0 25 * * *"\n',
                '\n[[event]]\nname = "zz-broken"\nrun = ""\n',
                "\nnot toml at all = = =\n",
                '\n[[event]]\nname = "Bad Name"\nrun = "true"\n',
            ]
        ),
    ).map("".join)
    monkeypatch.setattr(hostile, "definition_texts", broken)
