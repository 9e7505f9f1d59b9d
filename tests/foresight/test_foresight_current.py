"""Which occurrence a plan is about: active runs, the next one due, the last one finished,
and followers that go with their chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from evman.engine.foresight.current import Current, EventFacts, RunFacts, current_occurrences, graph_of
from evman.engine.model import EventSpec, RunState, Window

NOW = datetime(2026, 3, 21, 1, 30, tzinfo=UTC)
W, R, S, F = RunState.WAITING, RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED


def spec(name: str, **kw: Any) -> EventSpec:
    return EventSpec(name=name, call="x:y", timezone="UTC", **kw)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 3, day, hh, mm, tzinfo=UTC)


def current(
    facts: Sequence[EventFacts], requires: Mapping[str, Sequence[str]] | None = None, now: datetime = NOW
) -> dict[str, Current]:
    by_name = {f.spec.name: f for f in facts}
    return current_occurrences(by_name, graph_of({n: f.spec for n, f in by_name.items()}, requires or {}), now)


def test_an_active_run_is_the_current_occurrence() -> None:
    run = RunFacts(7, R, at(20, 22), started_at=at(20, 22, 1))
    found = current(
        [
            EventFacts(
                spec("x", schedule="every day at 22:00"),
                next_fire_at=at(21, 22),
                runs=(RunFacts(3, S, at(19, 22), at(19, 22), at(19, 23)), run),
            )
        ]
    )["x"]
    assert (found.run_id, found.occurrence.state, found.anchor) == (7, R, at(20, 22))
    assert found.occurrence.started_ts == at(20, 22, 1).timestamp()


def test_a_scheduled_event_due_within_the_horizon_is_expected_from_its_window() -> None:
    found = current(
        [EventFacts(spec("x", schedule="every day at 05:00", window=Window(earliest="05:30")), next_fire_at=at(21, 5))]
    )["x"]
    assert (found.run_id, found.occurrence.state) == (None, W)
    assert found.occurrence.opens_ts == at(21, 5, 30).timestamp()


def test_further_off_the_last_finished_run_stays_current() -> None:
    done = RunFacts(3, S, at(20, 20), at(20, 20), at(20, 21))
    found = current([EventFacts(spec("x", schedule="every day at 20:00"), next_fire_at=at(21, 20), runs=(done,))])["x"]
    assert (found.run_id, found.occurrence.state) == (3, S)


def test_nothing_within_the_horizon_leaves_the_event_out() -> None:
    assert current([EventFacts(spec("x", schedule="every day at 20:00"), next_fire_at=at(21, 20))]) == {}
    assert current([EventFacts(spec("lone"))]) == {}


def test_a_follower_takes_its_run_of_this_chain_not_last_nights() -> None:
    facts = [
        EventFacts(
            spec("a", schedule="every day at 22:00", on_success=("b",)),
            next_fire_at=at(21, 22),
            runs=(RunFacts(10, S, at(20, 22), at(20, 22), at(20, 23)),),
        ),
        EventFacts(
            spec("b", deadline="06:00"),
            runs=(RunFacts(5, S, at(19, 23), at(19, 23), at(20, 0)), RunFacts(11, R, at(20, 23), at(20, 23))),
        ),
    ]
    b = current(facts)["b"]
    assert (b.run_id, b.occurrence.state, b.anchor) == (11, R, at(20, 23))
    assert b.occurrence.deadline_ts == at(21, 6).timestamp()


def test_a_follower_of_a_running_chain_is_expected_with_the_chains_anchor() -> None:
    facts = [
        EventFacts(
            spec("a", schedule="every day at 22:00", on_success=("b",)),
            next_fire_at=at(21, 22),
            runs=(RunFacts(10, R, at(20, 22), at(20, 22)),),
        ),
        EventFacts(spec("b", deadline="06:00"), runs=(RunFacts(5, S, at(19, 23), at(19, 23), at(20, 0)),)),
        EventFacts(spec("c", requires="success(b)", deadline="+9h")),
    ]
    found = current(facts, {"c": ["b"]})
    b, c = found["b"], found["c"]
    assert (b.run_id, b.occurrence.state, b.anchor) == (None, W, at(20, 22))
    assert b.occurrence.deadline_ts == at(21, 6).timestamp()  # the same deadline as its real run will get
    assert (c.run_id, c.anchor, c.occurrence.deadline_ts) == (None, at(20, 22), at(21, 7).timestamp())
    assert b.key == c.key.replace("07:00", "06:00")


def test_held_and_history_are_carried_into_the_occurrence() -> None:
    found = current(
        [
            EventFacts(
                spec("x", schedule="every day at 02:00", expect_s=600.0),
                held=True,
                next_fire_at=at(21, 2),
                durations_s=(60.0,) * 5,
            )
        ]
    )["x"]
    occ = found.occurrence
    assert occ.held and (occ.estimate.samples, occ.estimate.confidence, occ.estimate.p50_s) == (5, "history", 60.0)


def test_a_waiting_retry_opens_when_its_backoff_ends() -> None:
    retry = RunFacts(12, W, at(21, 1), not_before=at(21, 1, 40))
    found = current(
        [
            EventFacts(
                spec("x", schedule="every day at 01:00"),
                next_fire_at=at(22, 1),
                runs=(RunFacts(11, F, at(21, 1), at(21, 1), at(21, 1, 20)), retry),
            )
        ]
    )["x"]
    assert (found.run_id, found.occurrence.opens_ts) == (12, at(21, 1, 40).timestamp())
