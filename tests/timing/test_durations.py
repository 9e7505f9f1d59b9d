from __future__ import annotations

import pytest

from evman.engine.timing.durations import (
    DurationError,
    TimeOfDayError,
    format_duration,
    parse_duration,
    parse_time_of_day,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("2h30m", 9000.0),
        ("1d", 86400.0),
        ("1d2h", 93600.0),
        ("1d2h3m4s", 93784.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1s500ms", 1.5),
        ("1.5s", 1.5),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        ("90", 90.0),
        ("2.5", 2.5),
        (" 2h 30m ", 9000.0),
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x",
        "5x",
        "5 minutes",
        "m",
        "1.",
        ".5s",
        "1e3",
        "5m5m",
        "30m2h",
        "500ms1s",
        "2h-30m",
        "+5s",
        "\u0665s",
        "5s garbage",
    ],
)
def test_parse_duration_refuses_garbage_naming_text_and_forms(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "e.g. 90s, 5m, 2h30m, 1d2h, 500ms, 1.5s" in message


@pytest.mark.parametrize("value", ["-5s", "-1", -1, -0.5])
def test_parse_duration_refuses_negative(value: str | int | float) -> None:
    with pytest.raises(DurationError, match="must be zero or more"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "9" * 400 + "d"])
def test_parse_duration_refuses_non_finite(value: str | float) -> None:
    with pytest.raises(DurationError, match="too large or not a number"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, None, [5]])
def test_parse_duration_refuses_other_types(value: object) -> None:
    with pytest.raises(DurationError, match="Invalid duration"):
        parse_duration(value)  # type: ignore[arg-type]


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.35, "350ms"),
        (0.9996, "1s"),
        (1.2, "1.2s"),
        (2.0, "2s"),
        (9.96, "10s"),
        (45, "45s"),
        (59.6, "1m"),
        (90, "1m30s"),
        (3599, "59m59s"),
        (3599.6, "1h"),
        (9000, "2h30m"),
        (9015, "2h30m"),
        (46800, "13h"),
        (46840, "13h1m"),
        (86399, "1d"),
        (93600, "1d2h"),
        (3 * 86400 + 4 * 3600 + 1200, "3d4h"),
        (400 * 86400, "400d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["45s", "1.2s", "350ms", "2h30m", "3d4h", "1m30s", "1d", "0s"])
def test_format_is_the_inverse_of_parse_for_short_forms(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_format_duration_refuses_negative_and_non_finite(seconds: float) -> None:
    with pytest.raises(DurationError, match="finite number, zero or more"):
        format_duration(seconds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("06:30", (6, 30)), ("6:30", (6, 30)), ("00:00", (0, 0)), ("23:59", (23, 59)), (" 7:05 ", (7, 5))],
)
def test_parse_time_of_day(text: str, expected: tuple[int, int]) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["24:00", "25:00", "12:60"])
def test_parse_time_of_day_refuses_out_of_range(text: str) -> None:
    with pytest.raises(TimeOfDayError, match=rf"'{text}': hours run 00-23 and minutes 00-59"):
        parse_time_of_day(text)


@pytest.mark.parametrize("text", ["aa", "", "6", "6:3", "06:30:00", "630", "-1:00", "06.30", "\u0666:30"])
def test_parse_time_of_day_refuses_garbage(text: str) -> None:
    with pytest.raises(TimeOfDayError, match=r"expected \"HH:MM\" such as \"06:30\""):
        parse_time_of_day(text)


def test_parse_time_of_day_refuses_a_toml_time_object() -> None:
    import datetime

    with pytest.raises(TimeOfDayError, match="quoted"):
        parse_time_of_day(datetime.time(6, 30))  # type: ignore[arg-type]


def test_time_of_day_error_is_a_value_error() -> None:
    assert issubclass(TimeOfDayError, ValueError)
