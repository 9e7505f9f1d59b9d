"""Schedule specs: cron (Debian rules, DST, L/W/#), every, at, macros, previews and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from evman.engine.timing.schedules import (
    Fire,
    Schedule,
    ScheduleError,
    fires_between,
    is_interval,
    next_fire,
    parse_schedule,
    preview,
)

NY = "America/New_York"  # 2026: gap 8 Mar 02:00-03:00, repeat 1 Nov 01:00-02:00
LONDON = "Europe/London"  # 2026: gap 29 Mar 01:00-02:00, repeat 25 Oct 01:00-02:00


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def fires(spec: str, after: datetime, tz: str, n: int) -> list[datetime]:
    return fires_between(spec, after, after + timedelta(days=400), tz, limit=n)


# -- cron and DST --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spec", "after", "expected"),
    [
        (NY, "30 2 * * *", local(NY, 2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
        (LONDON, "30 1 * * *", local(LONDON, 2026, 3, 28, 12), [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]),
    ],
)
def test_fixed_time_cron_in_spring_gap_runs_once_just_after_it(
    tz: str, spec: str, after: datetime, expected: list[datetime]
) -> None:
    assert fires(spec, after, tz, 2) == expected


def test_fixed_time_cron_gap_matches_the_documented_example() -> None:
    got = next_fire("30 2 * * *", datetime.fromisoformat("2026-03-07T12:00-05:00"), NY)
    assert got == datetime.fromisoformat("2026-03-08T03:00-04:00")
    assert got is not None and got.tzinfo is UTC and got.hour == 7
    assert next_fire("30 2 * * *", got, NY) == datetime.fromisoformat("2026-03-09T02:30-04:00")


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        (NY, local(NY, 2026, 10, 31, 12), [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]),
        (LONDON, local(LONDON, 2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
    ],
)
def test_fixed_time_cron_in_repeated_hour_runs_once_at_first_occurrence(
    tz: str, after: datetime, expected: list[datetime]
) -> None:
    assert fires("30 1 * * *", after, tz, 2) == expected


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        (NY, utc(2026, 11, 1, 5, 40), utc(2026, 11, 2, 6, 30)),  # 01:40 EDT, after the run
        (NY, utc(2026, 11, 1, 6, 10), utc(2026, 11, 2, 6, 30)),  # 01:10 EST, second pass
        (LONDON, utc(2026, 10, 25, 1, 10), utc(2026, 10, 26, 1, 30)),  # 01:10 GMT, second pass
    ],
)
def test_next_fire_inside_repeated_hour_is_strictly_after(tz: str, after: datetime, expected: datetime) -> None:
    assert next_fire("30 1 * * *", after, tz) == expected


@pytest.mark.parametrize(
    ("tz", "spec", "after", "until", "expected"),
    [
        (
            NY,
            "*/30 * * * *",
            local(NY, 2026, 3, 8, 1, 0),
            local(NY, 2026, 3, 8, 3, 30),
            [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 30)],
        ),
        (
            LONDON,
            "15 * * * *",
            local(LONDON, 2026, 3, 29, 0, 0),
            local(LONDON, 2026, 3, 29, 3, 0),
            [utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 15)],
        ),
    ],
)
def test_wildcard_cron_has_no_runs_in_the_gap(
    tz: str, spec: str, after: datetime, until: datetime, expected: list[datetime]
) -> None:
    assert fires_between(spec, after, until, tz) == expected


@pytest.mark.parametrize(
    ("tz", "spec", "after", "until", "expected"),
    [
        (
            NY,
            "*/30 * * * *",
            utc(2026, 11, 1, 4, 45),
            utc(2026, 11, 1, 7, 0),
            [
                utc(2026, 11, 1, 5, 0),
                utc(2026, 11, 1, 5, 30),
                utc(2026, 11, 1, 6, 0),
                utc(2026, 11, 1, 6, 30),
                utc(2026, 11, 1, 7, 0),
            ],
        ),
        (
            LONDON,
            "15 * * * *",
            local(LONDON, 2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 2, 0),
            [utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15)],
        ),
    ],
)
def test_wildcard_cron_runs_in_both_repeated_hours(
    tz: str, spec: str, after: datetime, until: datetime, expected: list[datetime]
) -> None:
    assert fires_between(spec, after, until, tz) == expected


def test_after_may_be_in_any_zone() -> None:
    as_utc = utc(2026, 6, 1, 12, 0)
    as_tokyo = as_utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert next_fire("0 9 * * *", as_tokyo, LONDON) == next_fire("0 9 * * *", as_utc, LONDON)
    assert next_fire("0 9 * * *", as_utc, LONDON) == utc(2026, 6, 2, 8, 0)


# -- L, W, # and the day-of-month / day-of-week rule ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "after", "expected_days"),
    [
        ("0 0 L * *", utc(2026, 1, 15), [(2026, 1, 31), (2026, 2, 28), (2026, 3, 31)]),
        ("0 0 L 2 *", utc(2027, 3, 1), [(2028, 2, 29)]),
        ("0 0 LW * *", utc(2026, 5, 1), [(2026, 5, 29), (2026, 6, 30), (2026, 7, 31)]),
        ("0 0 15W * *", utc(2026, 8, 1), [(2026, 8, 14), (2026, 9, 15), (2026, 10, 15), (2026, 11, 16)]),
        ("0 0 1W * *", utc(2026, 7, 15), [(2026, 8, 3), (2026, 9, 1), (2026, 10, 1), (2026, 11, 2)]),
        ("0 0 31W * *", utc(2026, 5, 1), [(2026, 5, 29), (2026, 7, 31), (2026, 8, 31)]),
        ("0 0 1W,15 * *", utc(2026, 7, 20), [(2026, 8, 3), (2026, 8, 15), (2026, 9, 1)]),
        ("0 0 * * 5#2", utc(2026, 1, 1), [(2026, 1, 9), (2026, 2, 13), (2026, 3, 13)]),
        ("0 0 * * fri#3", utc(2026, 1, 1), [(2026, 1, 16), (2026, 2, 20), (2026, 3, 20)]),
        ("0 0 * * 5L", utc(2026, 1, 1), [(2026, 1, 30), (2026, 2, 27), (2026, 3, 27)]),
    ],
)
def test_l_w_and_hash(spec: str, after: datetime, expected_days: list[tuple[int, int, int]]) -> None:
    got = fires(spec, after, "UTC", len(expected_days))
    assert [(d.year, d.month, d.day) for d in got] == expected_days


@pytest.mark.parametrize(
    ("spec", "expected_days"),
    [
        ("0 0 13 * 5", [2, 9, 13, 16, 23, 30]),  # both restricted: 13th OR Friday
        ("0 0 1-7 * mon", [1, 2, 3, 4, 5, 6, 7, 12, 19, 26]),  # not "first Monday": OR
        ("0 0 */2 * 5", [9, 23]),  # dom starts with '*': odd day AND Friday
        ("0 0 13 * */1", [13]),  # dow starts with '*': AND
        ("0 0 13 * *", [13]),
        ("0 0 15W,*/10 * 5", [1, 2, 9, 11, 15, 16, 21, 23, 30, 31]),  # first char decides: OR
    ],
)
def test_day_of_month_and_day_of_week_follow_debian(spec: str, expected_days: list[int]) -> None:
    got = fires_between(spec, utc(2025, 12, 31, 12), utc(2026, 1, 31, 12), "UTC")
    assert [d.day for d in got] == expected_days


def test_cron_names_are_case_insensitive() -> None:
    assert fires("0 9 * JAN Mon-Wed", utc(2026, 1, 1), "UTC", 3) == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 6, 9),
        utc(2026, 1, 7, 9),
    ]


# -- macros ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 6, 1)),
        ("@weekly", utc(2026, 5, 10)),  # Sunday
        ("@daily", utc(2026, 5, 7)),
        ("@midnight", utc(2026, 5, 7)),
        ("@hourly", utc(2026, 5, 6, 13)),
    ],
)
def test_macros_mean_their_five_field_form(macro: str, expected: datetime) -> None:
    after = utc(2026, 5, 6, 12, 30)  # a Wednesday
    assert next_fire(macro, after, "UTC") == expected
    assert parse_schedule(macro).kind == "cron"


def test_macros_use_the_zone() -> None:
    assert next_fire("@daily", utc(2026, 5, 6, 12), LONDON) == utc(2026, 5, 6, 23)


def test_reboot_never_fires_from_next_fire() -> None:
    after = utc(2026, 1, 1)
    assert parse_schedule("@reboot").kind == "reboot"
    assert next_fire("@reboot", after, "UTC") is None
    assert fires_between("@reboot", after, after + timedelta(days=30), "UTC") == []
    assert preview("@reboot", "UTC", after, 5) == []


# -- every ... -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "step"),
    [
        ("every 15 minutes", timedelta(minutes=15)),
        ("every second", timedelta(seconds=1)),
        ("every 2 seconds", timedelta(seconds=2)),
        ("every minute", timedelta(minutes=1)),
        ("every 1 minutes", timedelta(minutes=1)),
        ("every hour", timedelta(hours=1)),
        ("every 3 hours", timedelta(hours=3)),
    ],
)
def test_interval_fires_one_interval_after(spec: str, step: timedelta) -> None:
    after = datetime(2026, 1, 1, 10, 7, 13, 500, tzinfo=UTC)
    assert next_fire(spec, after, NY) == after + step
    assert fires_between(spec, after, after + 3 * step, NY) == [after + step, after + 2 * step, after + 3 * step]


def test_hour_interval_counts_elapsed_time_across_fall_back() -> None:
    after = local(NY, 2026, 11, 1, 0, 30)
    assert fires("every 1 hours", after, NY, 3) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 1, 7, 30),
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("every day", local(NY, 2026, 3, 8, 9, 0)),  # 23 hours later: same wall clock
        ("every 2 days", local(NY, 2026, 3, 9, 9, 0)),
    ],
)
def test_day_interval_keeps_the_wall_clock(spec: str, expected: datetime) -> None:
    assert next_fire(spec, local(NY, 2026, 3, 7, 9, 0), NY) == expected


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        (NY, utc(2026, 1, 1, 11, 0), utc(2026, 1, 1, 11, 30)),  # 06:00 EST: today
        (NY, utc(2026, 1, 1, 11, 30), utc(2026, 1, 2, 11, 30)),  # exactly 06:30: strictly after
        (NY, utc(2026, 7, 1, 12, 0), utc(2026, 7, 2, 10, 30)),  # summer: EDT
        (LONDON, utc(2026, 7, 1, 12, 0), utc(2026, 7, 2, 5, 30)),
    ],
)
def test_every_day_at_is_local_time(tz: str, after: datetime, expected: datetime) -> None:
    assert next_fire("every day at 06:30", after, tz) == expected


@pytest.mark.parametrize(
    ("tz", "spec", "after", "expected"),
    [
        (NY, "every day at 02:30", local(NY, 2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
        (
            LONDON,
            "every day at 01:30",
            local(LONDON, 2026, 3, 28, 12),
            [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        (NY, "every day at 01:30", local(NY, 2026, 10, 31, 12), [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]),
        (
            LONDON,
            "every day at 01:30",
            local(LONDON, 2026, 10, 24, 12),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        (
            LONDON,
            "every sunday at 01:30",
            local(LONDON, 2026, 3, 23, 12),
            [utc(2026, 3, 29, 1, 0), utc(2026, 4, 5, 0, 30)],
        ),
    ],
)
def test_every_at_time_follows_the_fixed_time_dst_rule(
    tz: str, spec: str, after: datetime, expected: list[datetime]
) -> None:
    assert fires(spec, after, tz, 2) == expected


def test_every_day_at_inside_repeated_hour_runs_once() -> None:
    after = local(NY, 2026, 11, 1, 1, 10, fold=1)  # second pass of 01:10
    assert next_fire("every day at 01:30", after, NY) == utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("every monday at 09:00", utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 9, 0)),  # a Monday
        ("every monday at 09:00", utc(2026, 6, 1, 9, 0), utc(2026, 6, 8, 9, 0)),
        ("Every Friday AT 17:00:30", utc(2026, 6, 1), utc(2026, 6, 5, 17, 0, 30)),
        ("every sunday at 00:00", utc(2026, 6, 1), utc(2026, 6, 7)),
    ],
)
def test_every_weekday_at(spec: str, after: datetime, expected: datetime) -> None:
    assert next_fire(spec, after, "UTC") == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("every 15 minutes", True),
        ("every second", True),
        ("every 3 hours", True),
        ("every day", True),
        ("every 2 days", True),
        ("every day at 06:30", False),
        ("every monday at 09:00", False),
        ("*/15 * * * *", False),
        ("@hourly", False),
        ("@reboot", False),
        ("at 2026-12-01T09:00", False),
    ],
)
def test_is_interval(spec: str, expected: bool) -> None:
    assert is_interval(spec) is expected


# -- at ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "tz", "expected"),
    [
        ("at 2026-12-01T09:00", LONDON, utc(2026, 12, 1, 9, 0)),
        ("at 2026-12-01T09:00", NY, utc(2026, 12, 1, 14, 0)),
        ("at 2026-12-01 09:00", NY, utc(2026, 12, 1, 14, 0)),
        ("at 2026-12-01T09:00+01:00", NY, utc(2026, 12, 1, 8, 0)),
        ("at 2026-12-01T09:00Z", NY, utc(2026, 12, 1, 9, 0)),
        ("at 2026-03-29T01:30", LONDON, utc(2026, 3, 29, 1, 0)),  # in the gap: just after it
        ("at 2026-11-01T01:30", NY, utc(2026, 11, 1, 5, 30)),  # repeated: first
    ],
)
def test_at_is_one_shot(spec: str, tz: str, expected: datetime) -> None:
    assert parse_schedule(spec).kind == "at"
    assert next_fire(spec, utc(2026, 1, 1), tz) == expected
    assert next_fire(spec, expected, tz) is None
    assert next_fire(spec, expected - timedelta(microseconds=1), tz) == expected
    assert fires_between(spec, utc(2026, 1, 1), utc(2027, 1, 1), tz) == [expected]


def test_at_in_the_past_is_none() -> None:
    assert next_fire("at 2026-12-01T09:00", utc(2027, 1, 1), "UTC") is None


# -- fires_between -----------------------------------------------------------------------------


def test_fires_between_excludes_after_and_includes_until() -> None:
    assert fires_between("0 * * * *", utc(2026, 1, 1, 10), utc(2026, 1, 1, 12), "UTC") == [
        utc(2026, 1, 1, 11),
        utc(2026, 1, 1, 12),
    ]


def test_fires_between_stops_at_limit() -> None:
    after = utc(2026, 1, 1)
    got = fires_between("*/5 * * * *", after, after + timedelta(days=1), "UTC", limit=10)
    assert got == [after + timedelta(minutes=5 * k) for k in range(1, 11)]
    assert len(fires_between("every second", after, after + timedelta(days=1), "UTC")) == 1000


def test_fires_between_is_empty_when_until_is_not_later() -> None:
    after = utc(2026, 1, 1)
    assert fires_between("* * * * *", after, after, "UTC") == []
    assert fires_between("* * * * *", after, after - timedelta(hours=1), "UTC") == []


def test_fires_between_agrees_with_chained_next_fire() -> None:
    after = local(NY, 2026, 3, 6, 12)
    for spec in ("30 2 * * *", "*/45 1-3 * * *", "every day at 02:30", "every day"):
        chained: list[datetime] = []
        at: datetime | None = after
        for _ in range(5):
            assert at is not None
            at = next_fire(spec, at, NY)
            assert at is not None
            chained.append(at)
        assert fires(spec, after, NY, 5) == chained, spec


# -- preview -----------------------------------------------------------------------------------


def test_preview_flags_a_shifted_cron_fire() -> None:
    got = preview("30 2 * * *", NY, local(NY, 2026, 3, 7, 12), 2)
    assert got[0] == Fire(
        utc=utc(2026, 3, 8, 7, 0), local=local(NY, 2026, 3, 8, 3, 0), note="shifted past DST gap (02:30 does not exist)"
    )
    assert str(got[0].local.tzinfo) == NY
    assert got[1].note is None


def test_preview_does_not_flag_a_fire_that_is_really_at_the_gap_end() -> None:
    assert [f.note for f in preview("0 3 * * *", NY, local(NY, 2026, 3, 7, 12), 2)] == [None, None]


@pytest.mark.parametrize(
    ("spec", "tz", "after", "note"),
    [
        ("every day at 01:30", LONDON, local(LONDON, 2026, 3, 28, 12), "shifted past DST gap (01:30 does not exist)"),
        ("every day at 02:30:15", NY, local(NY, 2026, 3, 7, 12), "shifted past DST gap (02:30:15 does not exist)"),
        ("0,30 2 * * *", NY, local(NY, 2026, 3, 7, 12), "shifted past DST gap (02:00 does not exist)"),
        ("at 2026-03-08T02:30", NY, local(NY, 2026, 3, 7, 12), "shifted past DST gap (02:30 does not exist)"),
        ("30 1 * * *", NY, local(NY, 2026, 10, 31, 12), "first of repeated hour (DST fall-back)"),
        ("30 1 * * *", LONDON, local(LONDON, 2026, 10, 24, 12), "first of repeated hour (DST fall-back)"),
    ],
)
def test_preview_notes_dst(spec: str, tz: str, after: datetime, note: str) -> None:
    assert preview(spec, tz, after, 1)[0].note == note


def test_preview_flags_both_passes_of_a_repeated_hour() -> None:
    got = preview("*/30 * * * *", NY, utc(2026, 11, 1, 4, 45), 5)
    assert [f.note for f in got] == ["first of repeated hour (DST fall-back)"] * 2 + ["second of repeated hour"] * 2 + [
        None
    ]
    assert [f.local.strftime("%H:%M%z") for f in got] == [
        "01:00-0400",
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
        "02:00-0500",
    ]
    # == between zones is always False for a time in a repeated hour (PEP 495), so convert.
    assert all(f.local.astimezone(UTC) == f.utc and f.utc.tzinfo is UTC for f in got)


def test_preview_count() -> None:
    assert len(preview("@hourly", "UTC", utc(2026, 1, 1), 7)) == 7
    assert preview("@hourly", "UTC", utc(2026, 1, 1), 0) == []


# -- parsing and errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("*/15 * * * *", "cron"),
        ("  0 6  * * mon-fri ", "cron"),
        ("@daily", "cron"),
        ("@reboot", "reboot"),
        ("every 15 minutes", "every"),
        ("every day at 06:30", "every"),
        ("at 2026-12-01T09:00", "at"),
    ],
)
def test_parse_schedule_keeps_spec_and_names_kind(spec: str, kind: str) -> None:
    assert parse_schedule(spec) == Schedule(spec=spec, kind=kind)


def test_parse_schedule_is_cached() -> None:
    assert parse_schedule("*/7 * * * *") is parse_schedule("*/7 * * * *")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "it is empty"),
        ("* * * *", "cron needs 5 fields"),
        ("* * * * * *", "this has 6"),
        ("61 * * * *", "minute field '61'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 30 2 *", "no month in the month field has that day"),
        ("0 0 ? * *", "day-of-month field '?'"),
        ("0 0 1 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 0 * * 5#6", "day-of-week field '5#6'"),
        ("0 0 32W * *", "nW needs a day from 1 to 31"),
        ("0 0 31W 2 *", "it never fires"),
        ("@fortnightly", "'@fortnightly' is not a cron macro"),
        ("every 0 minutes", "at least 1"),
        ("every 2 minute", "Use minutes instead of minute"),
        ("every fortnight", "'every 15 minutes'"),
        ("every day at 25:00", "'25:00' is not between 0 and 23"),
        ("every day at 6:30", "HH:MM(:SS)?"),
        ("every monday", "a weekday needs a time"),
        ("every 2 days at 10:00", "'at' goes with 'every day' or a weekday"),
        ("every 5 minutes at :30", "'at' goes with 'every day' or a weekday"),
        ("every week", "weeks are not supported"),
        ("at tomorrow", "'tomorrow' is not an ISO date-time"),
        ("tomorrow at noon", "not a schedule evman knows"),
    ],
)
def test_bad_specs_say_what_is_wrong_and_what_is_accepted(spec: str, problem: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(spec)
    message = str(caught.value)
    assert f"Bad schedule {spec!r}: " in message
    assert problem in message
    assert "Accepted forms: a 5-field cron expression" in message and "'every day at HH:MM" in message
    with pytest.raises(ScheduleError):
        next_fire(spec, utc(2026, 1, 1), "UTC")


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_unknown_zone_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError, match="Unknown time zone 'Mars/Base'"):
        next_fire("@daily", utc(2026, 1, 1), "Mars/Base")


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("@daily", datetime(2026, 1, 1), "UTC")
