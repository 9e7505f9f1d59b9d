"""What-if: "E=3x" slows an event, "E=+30m" delays it; bad values are refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evman.engine.foresight import (
    WhatIf,
    WhatIfError,
    apply_what_ifs,
    build_graph,
    occurrence,
    parse_what_if,
    parse_what_ifs,
    project,
)
from evman.engine.model import RunState
from tests.outside import found

NOW = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
EVENTS = {"fetch", "build", "publish"}


def test_a_factor_and_a_delay_parse() -> None:
    assert parse_what_if("build=3x", EVENTS) == WhatIf("build", factor=3.0)
    assert parse_what_if(" fetch = +30m ", EVENTS) == WhatIf("fetch", delay_s=1800.0)
    assert parse_what_if("build=1.5x") == WhatIf("build", factor=1.5)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("build", "expected EVENT=FACTORx"),
        ("build=", "expected EVENT=FACTORx"),
        ("=3x", "expected EVENT=FACTORx"),
        ("build=3", "neither a factor nor a delay"),
        ("build=0x", "above 0"),
        ("build=+30q", "Invalid duration"),
        ("biuld=3x", "no event 'biuld' in the plan (events: build, fetch, publish)"),
    ],
)
def test_bad_what_ifs_say_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(WhatIfError) as err:
        parse_what_if(text, EVENTS)
    assert said in str(err.value) and "--what-if" in str(err.value)


def test_a_huge_value_is_cut_in_the_message() -> None:
    with pytest.raises(WhatIfError) as err:
        parse_what_if("x" * 10_000)
    assert len(str(err.value)) < 400 and "10000 characters" in str(err.value)


def test_an_event_slowed_twice_is_refused_but_slowed_and_delayed_is_fine() -> None:
    assert len(parse_what_ifs(["build=2x", "build=+5m"], EVENTS)) == 2
    with pytest.raises(WhatIfError, match="slowed twice"):
        parse_what_ifs(["build=2x", "build=3x"], EVENTS)


def test_what_ifs_change_the_projection_and_leave_the_input_alone() -> None:
    occs = {
        "fetch": occurrence("fetch", RunState.WAITING, (600.0,) * 20),
        "build": occurrence("build", RunState.RUNNING, (1200.0,) * 20, started_at=NOW),
    }
    graph = build_graph(occs, {}, {"fetch": ["build"]})
    changed = apply_what_ifs(occs, parse_what_ifs(["build=3x", "fetch=+30m"]))
    base, what_if = project(graph, occs, NOW), project(graph, changed, NOW)
    assert found(base["build"].p50_ts) - NOW.timestamp() == 1200.0
    assert found(what_if["build"].p50_ts) - NOW.timestamp() == 3600.0
    assert found(what_if["fetch"].start_ts) - NOW.timestamp() == 1800.0
    assert found(what_if["fetch"].p50_ts) - NOW.timestamp() == 2400.0
    assert occs["build"].factor == 1.0 and occs["fetch"].delay_s == 0.0
