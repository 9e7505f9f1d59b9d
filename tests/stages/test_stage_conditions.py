"""`requires`: lookback, cycles refused, and why a waiting run has not started (runs.waiting_reason
and `evman show E --json`)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from evman.engine.clock import FakeClock
from evman.engine.definitions import DefinitionsError, parse_definitions
from evman.engine.store import Store, open_store
from tests.outside import found
from tests.stages.stage_helpers import ask, evman, runs, trigger

pytestmark = pytest.mark.backends


LOOKBACK = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "collect"
    run = "true"
    [[event]]
    name = "report"
    run = "true"
    schedule = "every 1 hours"
    requires = 'success(collect, "12h")'
"""


def test_a_lookback_condition_turns_false_when_the_success_is_too_old(
    engine_factory, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(LOOKBACK)
    trigger(engine, "collect", now=clock.now())
    engine.settle(clock.now())
    clock.advance(timedelta(hours=1))
    engine.settle(clock.now())
    assert [r["state"] for r in runs(store, "report")] == ["succeeded"]
    clock.set(datetime(2026, 1, 5, 12, 0, 1, tzinfo=UTC))
    engine.settle(clock.now())
    assert [r["state"] for r in runs(store, "report")][-1] == "succeeded", "12 h after: still true"
    clock.set(datetime(2026, 1, 5, 13, 0, 1, tzinfo=UTC))
    engine.settle(clock.now())
    last = runs(store, "report")[-1]
    assert last["state"] == "waiting"
    assert last["waiting_reason"] == "success(collect, 12h) is false: last success ended 13h ago"
    trigger(engine, "collect", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "report")[-1]["state"] == "succeeded", "a fresh success lets it start"


def _problems(text: str, tmp_path: Path) -> str:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(textwrap.dedent(text), source="defs.toml", base_dir=tmp_path)
    return str(caught.value)


def test_a_cycle_through_requires_is_refused_and_named(tmp_path: Path) -> None:
    message = _problems(
        """
        [[event]]
        name = "a"
        run = "true"
        requires = "success(c)"
        [[event]]
        name = "b"
        run = "true"
        requires = "success(a)"
        [[event]]
        name = "c"
        run = "true"
        requires = "done(b) and not running(a)"
    """,
        tmp_path,
    )
    assert "dependency cycle a -> b -> c -> a" in message


def test_a_cycle_through_on_success_and_requires_is_refused(tmp_path: Path) -> None:
    message = _problems(
        """
        [[event]]
        name = "build"
        run = "true"
        on_success = ["deploy"]
        requires = "success(deploy)"
        [[event]]
        name = "deploy"
        run = "true"
    """,
        tmp_path,
    )
    assert "dependency cycle" in message and "build -> deploy -> build" in message


def test_a_file_with_a_cycle_is_not_loaded(tmp_path: Path) -> None:
    from evman.console.cli.main import main

    defs = tmp_path / "cycle.toml"
    defs.write_text('[[event]]\nname = "a"\nrun = "true"\non_success = ["a"]\n')
    db = tmp_path / "cycle.db"
    result = CliRunner().invoke(main, ["load", str(defs), "--db", str(db)])
    assert result.exit_code == 2
    assert "dependency cycle a -> a" in result.output
    assert open_store(db).event_names() == set()


REASONS = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "fetch"
    shell = "test -e fetched"
    on_failure = { retries = 2, backoff = "2m" }
    [[event]]
    name = "build"
    run = "true"
    requires = "success(fetch) and not running(fetch)"
    [[event]]
    name = "publish"
    run = "true"
    window = { earliest = "06:00", latest = "07:00" }
    late_after = "06:10"
    runtime = { min = "1s", max = "5m" }
"""


def test_why_not_started_false_clause(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(REASONS)
    trigger(engine, "build", now=clock.now())
    engine.settle(clock.now())
    expected = "success(fetch) is false: it has never finished"
    assert runs(store, "build")[0]["waiting_reason"] == expected
    assert evman(db_path, "show", "build", "--json")["waiting_reason"] == expected


def test_why_not_started_window(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(REASONS)
    trigger(engine, "publish", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "publish")[0]["waiting_reason"] == "window opens at 06:00 UTC"
    shown = evman(db_path, "show", "publish", "--json")
    assert shown["waiting_reason"] == "window opens at 06:00 UTC"
    assert shown["window"] == {"earliest": "06:00", "latest": "07:00", "late_after": "06:10"}
    assert shown["runtime"] == {"min_s": 1.0, "max_s": 300.0, "kill": False}


def test_why_not_started_held(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(REASONS)
    assert ask(engine, "hold", "build", by="carol", now=clock.now())["outcome"] == "ok"
    trigger(engine, "build", now=clock.now())
    engine.settle(clock.now())
    assert runs(store, "build")[0]["waiting_reason"] == "held"
    shown = evman(db_path, "show", "build", "--json")
    assert (shown["waiting_reason"], shown["held"]) == ("held", True)


def test_why_not_started_retry_backoff(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(REASONS)
    trigger(engine, "fetch", now=clock.now())
    engine.settle(clock.now())
    retry = runs(store, "fetch")[-1]
    assert retry["trigger"] == "retry"
    # within the next hour, with its seconds: "00:02" would read as if it were past at 00:02:00
    assert retry["waiting_reason"] == "retry backoff until 00:02:01 UTC"
    assert evman(db_path, "show", "fetch", "--json")["waiting_reason"] == "retry backoff until 00:02:01 UTC"


def test_the_reason_follows_what_blocks_the_run_now(
    engine_factory, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(REASONS)
    build = trigger(engine, "build", now=clock.now())
    trigger(engine, "fetch", now=clock.now())
    engine.settle(clock.now())
    assert found(store.run(build))["waiting_reason"] == (
        "success(fetch) is false: its last run failed at 2026-01-05T00:00:01Z"
    )
    (tmp_path / "fetched").touch()
    clock.advance(timedelta(minutes=2))
    engine.settle(clock.now())
    assert found(store.run(build))["state"] == "succeeded"
    assert found(store.run(build))["waiting_reason"] is None


def test_show_json_has_duration_statistics(engine_factory, clock: FakeClock, store: Store, db_path: Path) -> None:
    engine = engine_factory(REASONS.replace('run = "true"\n    window', 'run = "sleep 0.2"\n    window'))
    clock.set(datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    for minutes in (1, 2, 3, 4, 10):  # fake durations: the clock moves while each run runs
        run_id = trigger(engine, "publish", now=clock.now())
        engine.tick(clock.now())
        clock.advance(timedelta(minutes=minutes))
        engine.settle(clock.now())
        assert found(store.run(run_id))["state"] == "succeeded"
    stats = evman(db_path, "show", "publish", "--json")["stats"]
    assert stats == {"count": 5, "p50_s": 180.0, "p90_s": 600.0, "max_s": 600.0}
