"""Business calendars on real dates: public holidays of several countries (observed days, Easter),
business-day schedules, on_holiday next/previous across month ends, DST nights, local days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from evman.engine.model import Calendar, CalendarDef, HolidaySource, OnHoliday
from evman.engine.timing import calendars, occurrences
from evman.engine.timing.occurrences import Timing
from evman.engine.timing.schedules import ScheduleError


def cal(name: str = "c", **fields) -> Calendar:
    return Calendar(name, (CalendarDef(name, **fields),))


ENGLAND = cal("uk", holidays=(HolidaySource("GB", "ENG"),))
USA = cal("us", holidays=(HolidaySource("US"),))
GERMANY = cal("de", holidays=(HolidaySource("DE", language="en_US"),))
FRANCE = cal("fr", holidays=(HolidaySource("FR", language="en_US"),))
JAPAN = cal("jp", holidays=(HolidaySource("JP", language="en_US"),))


def fires(timing: Timing, after: datetime, n: int) -> list[str]:
    return [e.local.strftime("%Y-%m-%d %H:%M") for e in occurrences.preview(timing, after, n) if e.is_fire]


def closed(c: Calendar, day: str) -> str | None:
    why = calendars.closure(c, date.fromisoformat(day))
    return None if why is None else why.name


# -- holidays, three countries and more ---------------------------------------------------------


def test_a_christmas_on_a_weekend_is_observed_on_the_monday_and_tuesday_in_england() -> None:
    # 2027-12-25 is a Saturday, 26 a Sunday: the bank holidays are Monday 27 and Tuesday 28.
    assert closed(ENGLAND, "2027-12-25") == "Christmas Day"
    assert closed(ENGLAND, "2027-12-27") == "Christmas Day (observed)"
    assert closed(ENGLAND, "2027-12-28") == "Boxing Day (observed)"
    assert closed(ENGLAND, "2027-12-29") is None


def test_a_us_holiday_on_a_sunday_is_observed_on_monday() -> None:
    # 2027-07-04 is a Sunday: Independence Day is observed on Monday 5 July.
    assert date(2027, 7, 4).weekday() == 6
    assert closed(USA, "2027-07-05") == "Independence Day (observed)"
    daily = Timing("0 9 * * *", "America/New_York", USA)
    assert fires(daily, datetime(2027, 7, 1, tzinfo=UTC), 3) == [
        "2027-07-01 09:00",
        "2027-07-02 09:00",
        "2027-07-06 09:00",
    ]


def test_easter_holidays_move_with_easter_in_england_germany_and_france() -> None:
    # Easter Sunday: 2026-04-05, 2027-03-28.
    assert closed(ENGLAND, "2026-04-03") == "Good Friday"
    assert closed(ENGLAND, "2026-04-06") == "Easter Monday"
    assert closed(ENGLAND, "2027-03-26") == "Good Friday"
    assert closed(ENGLAND, "2027-03-29") == "Easter Monday"
    assert closed(GERMANY, "2026-05-14") == "Ascension Day"  # Easter + 39
    assert closed(GERMANY, "2026-05-25") == "Pentecost Monday"  # Easter + 50
    assert closed(FRANCE, "2026-04-06") == "Easter Monday"
    assert closed(FRANCE, "2026-04-03") is None  # not a public holiday in France (outside Alsace-Moselle)


def test_a_subdivision_has_its_own_holidays() -> None:
    scotland = cal("scot", holidays=(HolidaySource("GB", "SCT"),))
    assert closed(scotland, "2026-01-02") is not None  # 2 January: a bank holiday in Scotland only
    assert closed(ENGLAND, "2026-01-02") is None
    assert closed(scotland, "2026-11-30") == "Saint Andrew's Day"


def test_the_calendar_day_is_the_events_local_day() -> None:
    # 06:00 on New Year's Day in Tokyo is still 31 December in UTC: the Japanese holiday removes it.
    tokyo = Timing("0 6 * * *", "Asia/Tokyo", JAPAN)
    entries = occurrences.preview(tokyo, datetime(2026, 12, 30, 12, tzinfo=UTC), 2)
    removed = [e for e in entries if e.change == "removed"]
    assert [e.utc for e in removed][:1] == [datetime(2026, 12, 31, 21, tzinfo=UTC)]
    assert removed[0].closure is not None and removed[0].closure.name == "New Year's Day"


# -- company days, weekends, calendars built from others ----------------------------------------


def test_company_dates_and_a_custom_weekend() -> None:
    gulf = cal("gulf", weekend=(4, 5), dates=(("2026-12-24", "Office party"),))
    assert closed(gulf, "2026-12-24") == "Office party"
    assert closed(gulf, "2026-12-25") == "Friday (weekend)"
    assert closed(gulf, "2026-12-27") is None  # Sunday works here


def test_include_unions_the_closed_days_and_exclude_reopens_listed_ones() -> None:
    defs = (
        CalendarDef("both", include=("uk", "us"), exclude=("worked",)),
        CalendarDef("uk", holidays=(HolidaySource("GB", "ENG"),)),
        CalendarDef("us", holidays=(HolidaySource("US"),)),
        CalendarDef("worked", dates=(("2026-05-25", "we work it"),)),
    )
    both = Calendar("both", defs)
    assert closed(both, "2026-07-03") == "Independence Day (observed)"  # from us
    assert closed(both, "2026-08-31") == "Late Summer Bank Holiday"  # from uk
    assert closed(both, "2026-05-25") is None  # uk Spring Bank Holiday and US Memorial Day, but worked
    assert closed(both, "2026-05-30") == "Saturday (weekend)"


# -- business-day schedules ---------------------------------------------------------------------


def test_the_last_business_day_skips_a_month_ending_in_a_weekend_or_a_holiday() -> None:
    last = Timing("business day -1 of month at 19:00", "Europe/London", ENGLAND)
    got = fires(last, datetime(2026, 4, 30, 20, tzinfo=UTC), 5)
    # May 2026 ends Sat/Sun -> Fri 29; Aug 31 is the Late Summer Bank Holiday -> Fri 28;
    # October ends on a Saturday -> Fri 30 (after the clocks went back: 19:00 GMT).
    assert got == ["2026-05-29 19:00", "2026-06-30 19:00", "2026-07-31 19:00", "2026-08-28 19:00", "2026-09-30 19:00"]
    assert fires(last, datetime(2026, 10, 1, tzinfo=UTC), 1) == ["2026-10-30 19:00"]


def test_the_last_business_day_of_december_steps_over_company_days_and_christmas() -> None:
    company = Calendar(
        "acme", (CalendarDef("acme", include=("uk",), dates=(("2027-12-31", "Year end"),)), ENGLAND.defs[0])
    )
    last = Timing("last business day of month at 18:00", "Europe/London", company)
    # 31 Dec 2027 is a company day; 28 and 27 are the observed Christmas holidays: Thursday 30.
    assert fires(last, datetime(2027, 12, 1, tzinfo=UTC), 1) == ["2027-12-30 18:00"]


def test_the_nth_business_day_counts_past_holidays() -> None:
    third = Timing("business day 3 of month at 06:00", "Europe/London", ENGLAND)
    # January 2027: Fri 1 is New Year's Day, so the 3rd business day is Wed 6.
    assert fires(third, datetime(2026, 12, 31, tzinfo=UTC), 1) == ["2027-01-06 06:00"]
    first = Timing("first business day of month at 06:00", "America/New_York", USA)
    assert fires(first, datetime(2026, 8, 31, tzinfo=UTC), 1) == ["2026-09-01 06:00"]
    assert fires(first, datetime(2027, 8, 31, tzinfo=UTC), 1) == ["2027-09-01 06:00"]


def test_every_business_day_without_a_calendar_is_monday_to_friday() -> None:
    every = Timing("every business day at 07:30", "UTC")
    assert fires(every, datetime(2026, 1, 1, 12, tzinfo=UTC), 3) == [
        "2026-01-02 07:30",
        "2026-01-05 07:30",
        "2026-01-06 07:30",
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("business day 0 of month at 06:00", "neither the first (1) nor the last (-1)"),
        ("business day 24 of month at 06:00", "at most 23 business days"),
        ("business day 3 of month", "needs a time of day"),
        ("business day 3 of month at 25:00", "hours run 00-23"),
        ("every business day", "needs a time of day"),
        ("business days 3 of month at 06:00", "does not read as a business-day schedule"),
    ],
)
def test_a_bad_business_day_schedule_says_what_is_wrong_and_the_forms(spec: str, problem: str) -> None:
    with pytest.raises(ScheduleError) as info:
        occurrences.check_schedule(spec)
    assert problem in str(info.value)
    assert "business day N of month at HH:MM" in str(info.value)


# -- on_holiday: skip, next, previous -----------------------------------------------------------


def test_next_and_previous_move_across_a_month_end() -> None:
    # Monday 31 August 2026 is the Late Summer Bank Holiday in England.
    monthly = "0 8 31 * *"
    after = datetime(2026, 8, 1, tzinfo=UTC)
    assert fires(Timing(monthly, "Europe/London", ENGLAND, OnHoliday.NEXT), after, 1) == ["2026-09-01 08:00"]
    assert fires(Timing(monthly, "Europe/London", ENGLAND, OnHoliday.PREVIOUS), after, 1) == ["2026-08-28 08:00"]
    # Saturday 31 January 2026 moves to Monday 2 February.
    jan = Timing(monthly, "Europe/London", ENGLAND, OnHoliday.NEXT)
    assert fires(jan, datetime(2026, 1, 1, tzinfo=UTC), 1) == ["2026-02-02 08:00"]


def test_skip_removes_the_fire_and_says_which_holiday() -> None:
    monthly = Timing("0 8 31 * *", "Europe/London", ENGLAND, OnHoliday.SKIP)
    entries = occurrences.preview(monthly, datetime(2026, 8, 1, tzinfo=UTC), 1)
    assert [(e.local.strftime("%Y-%m-%d"), e.change, str(e.closure)) for e in entries] == [
        ("2026-08-31", "removed", "Late Summer Bank Holiday, calendar uk"),
        ("2026-10-31", "removed", "Saturday (weekend), calendar uk"),
        ("2026-12-31", None, "None"),
    ]


def test_next_merges_a_moved_fire_into_one_already_there() -> None:
    daily = Timing("0 6 * * *", "Europe/London", ENGLAND, OnHoliday.NEXT)
    entries = occurrences.preview(daily, datetime(2027, 12, 23, 12, tzinfo=UTC), 3)
    runs = [e.local.strftime("%m-%d") for e in entries if e.is_fire]
    merged = [
        (e.wanted.strftime("%m-%d"), e.local.strftime("%m-%d")) for e in entries if e.change == "merged" and e.wanted
    ]
    assert runs == ["12-24", "12-29", "12-30"]
    assert merged == [("12-25", "12-29"), ("12-26", "12-29"), ("12-27", "12-29"), ("12-28", "12-29")]
    assert occurrences.next_fire(daily, datetime(2027, 12, 24, 6, tzinfo=UTC)) == datetime(2027, 12, 29, 6, tzinfo=UTC)


def test_a_weekly_saturday_job_moved_to_monday_is_found_after_the_saturday() -> None:
    weekly = Timing("0 6 * * sat", "UTC", cal("plain"), OnHoliday.NEXT)
    saturday_noon = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert occurrences.next_fire(weekly, saturday_noon) == datetime(2026, 1, 12, 6, tzinfo=UTC)
    previous = Timing("0 6 * * sat", "UTC", cal("plain"), OnHoliday.PREVIOUS)
    assert occurrences.next_fire(previous, saturday_noon) == datetime(2026, 1, 16, 6, tzinfo=UTC)


def test_fires_between_and_latest_fire_see_only_real_fires() -> None:
    daily = Timing("0 6 * * *", "Europe/London", ENGLAND)
    start, end = datetime(2026, 12, 23, 12, tzinfo=UTC), datetime(2027, 1, 5, 12, tzinfo=UTC)
    got = occurrences.fires_between(daily, start, end)
    assert [f.strftime("%m-%d") for f in got] == ["12-24", "12-29", "12-30", "12-31", "01-04", "01-05"]
    assert occurrences.latest_fire(daily, got[0], datetime(2027, 1, 3, tzinfo=UTC)) == datetime(
        2026, 12, 31, 6, tzinfo=UTC
    )


def test_a_calendar_that_closes_every_day_of_the_schedule_has_no_next_fire() -> None:
    weekends = Timing("0 6 * * sat,sun", "UTC", cal("plain"))
    assert occurrences.next_fire(weekends, datetime(2026, 1, 1, tzinfo=UTC)) is None


# -- DST nights with a calendar -----------------------------------------------------------------


def test_a_business_day_in_a_dst_gap_runs_once_just_after_it() -> None:
    # A Friday/Saturday weekend makes Sunday 29 March 2026 (the night the UK clocks go forward)
    # a business day: 01:30 does not exist, so it runs at 02:00 BST, once.
    sunday_works = cal("gulf", weekend=(4, 5))
    timing = Timing("every business day at 01:30", "Europe/London", sunday_works)
    entries = [e for e in occurrences.preview(timing, datetime(2026, 3, 28, tzinfo=UTC), 2)]
    assert [e.local.isoformat() for e in entries] == ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"]
    assert entries[0].note == "shifted past DST gap (01:30 does not exist)"


def test_a_business_day_in_a_repeated_hour_runs_once_at_the_first() -> None:
    sunday_works = cal("gulf", weekend=(4, 5))
    timing = Timing("every business day at 01:30", "Europe/London", sunday_works)
    got = occurrences.preview(timing, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert [e.utc for e in got] == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
    assert got[0].note == "first of repeated hour (DST fall-back)"


def test_a_fire_moved_onto_a_dst_gap_lands_just_after_it() -> None:
    # New York springs forward on Sunday 8 March 2026 (02:00 -> 03:00). With a Friday/Saturday
    # weekend, Saturday's 02:30 moves to Sunday's 02:30, which does not exist: 03:00 EDT.
    us_gulf = Calendar("usg", (CalendarDef("usg", weekend=(4, 5), holidays=(HolidaySource("US"),)),))
    timing = Timing("30 2 * * sat", "America/New_York", us_gulf, OnHoliday.NEXT)
    (moved,) = [e for e in occurrences.preview(timing, datetime(2026, 3, 6, tzinfo=UTC), 1) if e.is_fire]
    assert moved.change == "moved"
    assert moved.local.isoformat() == "2026-03-08T03:00:00-04:00"
    assert moved.wanted == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)


def test_skip_with_cron_wall_clock_hours_on_a_dst_night() -> None:
    # An hourly job on a calendar: the spring-forward Sunday is a weekend day and is removed
    # whole; Monday runs every hour as usual.
    hourly = Timing("0 * * * *", "Europe/London", ENGLAND)
    got = occurrences.fires_between(hourly, datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, 3, tzinfo=UTC))
    local = [f.astimezone(ZoneInfo("Europe/London")).strftime("%d %H:%M") for f in got]
    assert local == ["30 00:00", "30 01:00", "30 02:00", "30 03:00", "30 04:00"]
