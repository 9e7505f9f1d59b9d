"""Which state may follow which is written once (model.TRANSITIONS) and every change of a run's
state goes through it: in memory (`ActiveRun.born` and `ActiveRun.move`, which call
`check_transition`) and in the database (the compare-and-set of a run's start and end is read
from the same table). Every (from, to) pair, allowed and refused, on SQLite and on PostgreSQL;
then the engine's own paths that used to disagree with the table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.model import NEW, TRANSITIONS, InvalidTransition, RunState, check_transition
from evman.engine.store import Batch, Fenced, PgStore, Store, open_store
from evman.engine.tick.active import ActiveRun
from tests.conftest import START
from tests.stages.stage_helpers import runs

pytestmark = pytest.mark.backends

FROM = (NEW, *RunState)
AT = iso(START)


def test_the_table_names_every_state_and_a_finished_run_goes_nowhere() -> None:
    assert set(TRANSITIONS) == {NEW, *RunState}
    assert TRANSITIONS[NEW] == {RunState.WAITING, RunState.SKIPPED}
    for state in RunState:
        assert (TRANSITIONS[state] == frozenset()) is state.is_finished, state
    reached = set().union(*TRANSITIONS.values())
    assert reached == set(RunState), "every state is reachable from a new run"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("old", FROM, ids=lambda s: str(s or "new"))
def test_check_transition_allows_exactly_the_tables_pairs(old: RunState | None) -> None:
    for new in RunState:
        if new in TRANSITIONS[old]:
            assert check_transition(7, "job", old, new) is new
        else:
            with pytest.raises(InvalidTransition) as refused:
                check_transition(7, "job", old, new)
            allowed = ", ".join(sorted(TRANSITIONS[old])) or "none (it has finished)"
            said = (
                f"cannot be made {new}; a new run may be: {allowed}."
                if old is NEW
                else f"cannot go from {old} to {new}; it may go to: {allowed}."
            )
            assert str(refused.value) == f"Run 7 of 'job' {said}"


@pytest.fixture
def owner(store: Store, backend: str) -> Any:
    """The writing engine's fleet token on PostgreSQL (its writes are compare-and-sets there);
    None on SQLite, whose one engine writes without a token."""
    store.execute_many(
        "INSERT INTO events (name, spec, kind, timezone, created_at, updated_at) VALUES (?, '{}', 'run', 'UTC', ?, ?)",
        [("job", AT, AT)],
    )
    if backend == "sqlite":
        return None
    assert isinstance(store, PgStore)
    token, _live = store.register_engine(host="here", pid=1, tags=None, lease_s=30.0, tick_s=1.0, version="test")
    return token


def _made(store: Store, owner: Any, run_id: int, state: RunState) -> ActiveRun:
    """A run in `state`, inserted as the engine inserts its runs, read back as the engine reads them."""
    run = ActiveRun(run_id, "job", state, "schedule", 1, START + timedelta(seconds=run_id), is_new=True)
    if state is not RunState.WAITING:
        run.started_at = START
    batch = Batch()
    batch.insert_run(run.values(START, "here"))
    assert store.apply(batch, owner=owner) == 1
    return ActiveRun.from_row(store.run(run_id) or {})


def _write_move(store: Store, owner: Any, run: ActiveRun, new: RunState) -> bool:
    """The write the engine makes for a move to `new` (a start, or an end); whether it changed the row."""
    batch = Batch()
    if new is RunState.RUNNING:
        batch.run_started(run.id, AT, "moved", "/tmp/moved.log")
    else:
        batch.run_ended(
            run.id,
            state=new,
            ended_at=AT,
            exit_code=None,
            reason="moved",
            output_tail=None,
            checks=None,
            flags=None,
            pid=None,
        )
    try:
        store.apply(batch, owner=owner)
    except Fenced:
        assert owner is not None, "SQLite has no owner to fence"
    row = store.run(run.id) or {}
    return "moved" in (row["host"], row["reason"])


@pytest.mark.parametrize("old", list(RunState), ids=str)
def test_every_pair_moves_in_memory_and_in_the_database_only_along_the_table(
    store: Store, owner: Any, old: RunState
) -> None:
    for n, new in enumerate(RunState):
        run = _made(store, owner, 10 * n + 1, old)
        allowed = new in TRANSITIONS[old]
        if allowed:
            run.move(new)
            assert run.state is new
        else:
            with pytest.raises(InvalidTransition):
                run.move(new)
            assert run.state is old
        # the database guard agrees, even with a write the memory check would have stopped
        assert _write_move(store, owner, run, new) is allowed, f"{old} -> {new}"
        assert (store.run(run.id) or {})["state"] == (new if allowed else old)


@pytest.mark.parametrize("new", list(RunState), ids=str)
def test_a_run_is_made_waiting_or_skipped_only(store: Store, owner: Any, new: RunState) -> None:
    if new not in TRANSITIONS[NEW]:
        with pytest.raises(InvalidTransition, match=f"cannot be made {new}"):
            ActiveRun.born(new, 1, "job", trigger="schedule", attempt=1, scheduled_for=START)
        return
    run = ActiveRun.born(new, 1, "job", trigger="schedule", attempt=1, scheduled_for=START)
    assert (run.state, run.is_new) == (new, True)
    batch = Batch()
    batch.insert_run(run.values(START, "here"))
    assert store.apply(batch, owner=owner) == 1
    assert (store.run(1) or {})["state"] == new


# -- the engine's paths: a run made and ended in one tick is inserted whole -----------------------

DEFS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "render"
    run = "sleep 30"
    window = { earliest = "06:00" }
    [[event]]
    name = "nightly"
    run = "true"
    schedule = "0 5 * * *"
    window = { latest = "05:30" }
    [[event]]
    name = "digest"
    run = "sleep 30"
"""


def _requests(engine, *asks: tuple[str, str]) -> list[dict[str, Any]]:
    """Queue several requests from another connection, then answer them all in one tick."""
    other = open_store(engine.store.target)
    try:
        ids = [other.add_request(verb, target, requested_by="bob") for verb, target in asks]
    finally:
        other.close()
    engine.tick()
    return [engine.store.request(i) for i in ids]


def test_a_run_triggered_and_killed_in_one_tick_is_recorded_killed(engine_factory, store: Store) -> None:
    """Before: on PostgreSQL the kill's end found the row inserted as `killed` already, its
    compare-and-set fell short, and the engine was fenced (exit 3)."""
    engine = engine_factory(DEFS)
    trigger, kill = _requests(engine, ("trigger", "render"), ("kill", "render"))
    assert (trigger["outcome"], kill["outcome"]) == ("ok", "ok")
    (run,) = runs(store, "render")
    assert (run["state"], run["ended_at"], run["started_at"]) == ("killed", AT, None)
    assert run["reason"] == f"killed before it started by bob (request {kill['id']})"
    assert engine.fleet is None or not engine.fleet.fenced


def test_a_catch_up_run_whose_window_closed_is_missed_in_its_first_tick(
    engine_factory, store: Store, clock: FakeClock
) -> None:
    """Before: on PostgreSQL an engine back after a night away was fenced by its first catch-up."""
    engine = engine_factory(DEFS)
    engine.tick(clock.now())
    clock.advance(timedelta(hours=6))
    engine.tick(clock.now())
    (run,) = runs(store, "nightly")
    assert (run["state"], run["ended_at"], run["waiting_reason"]) == ("missed", iso(clock.now()), None)
    assert run["reason"].startswith("missed: window closed at 05:30")
    assert engine.fleet is None or not engine.fleet.fenced


def test_a_run_turned_away_by_concurrency_skip_is_born_skipped_with_its_end(engine_factory, store: Store) -> None:
    engine = engine_factory(DEFS)
    first, second = _requests(engine, ("trigger", "digest"), ("trigger", "digest"))
    assert first["outcome"] == "ok"
    assert second["outcome"] == "digest: not started, another run is active (concurrency=skip)"
    running, skipped = runs(store, "digest")
    assert running["state"] == "running"
    assert (skipped["state"], skipped["ended_at"], skipped["waiting_reason"]) == ("skipped", AT, None)
    # the requests stage answers before the start stage: the first run still waited then
    assert skipped["reason"] == f"skipped: run {running['id']} is still waiting (concurrency=skip)"
