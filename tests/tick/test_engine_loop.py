"""The engine on a fake clock, a real SQLite file and real child processes: schedules, DST,
misfire, concurrency, one-shots, @reboot, reloads and pruning."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.engine import Engine
from evman.engine.store import Store, open_store
from tests.engine_cli import (
    SETTLE_S,
    cli,
    kill_running_commands,  # noqa: F401 (an autouse fixture)
    load_defs,
    runs,
    tick_until,
    wait_until,
)

pytestmark = pytest.mark.backends

Make = Callable[..., Engine]


def event(name: str, schedule: str, *, tz: str = "UTC", command: str = "true", **keys: str) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'[[event]]\nname = "{name}"\nrun = "{command}"\nschedule = "{schedule}"\ntimezone = "{tz}"\n{extra}'


def step_through(engine: Engine, clock: FakeClock, until: datetime, step: timedelta) -> None:
    """Advance the fake clock in steps, letting each step's runs finish (in real time)."""
    while clock.now() < until:
        clock.advance(step)
        engine.settle(clock.now(), timeout_s=SETTLE_S)


def scheduled(db: Path, name: str) -> list[str]:
    return [r["scheduled_for"] for r in runs(db, name)]


# -- cron ---------------------------------------------------------------------------------------


def test_quarter_hour_cron_runs_at_the_quarter_not_a_second_before(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    clock.set(datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    engine = engine_factory(event("q", "*/15 * * * *"))
    assert engine.tick(clock.now()) == []
    clock.advance(timedelta(minutes=14, seconds=59))
    assert [c for c in engine.tick(clock.now()) if c.kind == "run"] == []
    assert runs(db_path) == []
    clock.advance(timedelta(seconds=1))
    changes = engine.tick(clock.now())
    assert [(c.run_id, c.state) for c in changes if c.kind == "run"] == [(1, "waiting"), (1, "running")]
    (run,) = runs(db_path)
    assert run["state"] == "running" and run["scheduled_for"] == iso(clock.now())
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert runs(db_path)[0]["state"] == "succeeded"


# -- DST, through the engine --------------------------------------------------------------------

NY, LONDON = "America/New_York", "Europe/London"
DST_CASES = [
    # zone, schedule, local start (noon the day before), UTC fires expected over ~2.5 days
    (NY, "30 2 * * *", "2026-03-07T12:00", ["2026-03-08T07:00", "2026-03-09T06:30"]),
    (NY, "every day at 02:30", "2026-03-07T12:00", ["2026-03-08T07:00", "2026-03-09T06:30"]),
    (NY, "30 1 * * *", "2026-10-31T12:00", ["2026-11-01T05:30", "2026-11-02T06:30"]),
    (NY, "every day at 01:30", "2026-10-31T12:00", ["2026-11-01T05:30", "2026-11-02T06:30"]),
    (LONDON, "30 1 * * *", "2026-03-28T12:00", ["2026-03-29T01:00", "2026-03-30T00:30"]),
    (LONDON, "every day at 01:30", "2026-03-28T12:00", ["2026-03-29T01:00", "2026-03-30T00:30"]),
    (LONDON, "30 1 * * *", "2026-10-24T12:00", ["2026-10-25T00:30", "2026-10-26T01:30"]),
    (LONDON, "every day at 01:30", "2026-10-24T12:00", ["2026-10-25T00:30", "2026-10-26T01:30"]),
    (LONDON, "30 2 * * *", "2026-03-28T12:00", ["2026-03-29T01:30", "2026-03-30T01:30"]),
]


@pytest.mark.parametrize(
    ("zone", "schedule", "start", "expected"),
    DST_CASES,
    ids=[f"{z.split('/')[1]}-{s.replace(' ', '_')}-{st[:10]}" for z, s, st, _ in DST_CASES],
)
def test_fixed_time_daily_job_runs_once_a_day_across_dst(
    engine_factory: Make, clock: FakeClock, db_path: Path, zone: str, schedule: str, start: str, expected: list[str]
) -> None:
    begin = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(zone))
    clock.set(begin)
    engine = engine_factory(event("daily", schedule, tz=zone))
    step_through(engine, clock, begin + timedelta(hours=60), timedelta(minutes=30))
    got = runs(db_path, "daily")
    assert [r["scheduled_for"] for r in got] == [iso(datetime.fromisoformat(e).replace(tzinfo=UTC)) for e in expected]
    assert {r["state"] for r in got} == {"succeeded"}


@pytest.mark.parametrize(("day", "hours"), [("2026-03-08", 23), ("2026-11-01", 25)])
def test_hourly_wildcard_job_follows_the_wall_clock(
    engine_factory: Make, clock: FakeClock, db_path: Path, day: str, hours: int
) -> None:
    zone = ZoneInfo(NY)
    midnight = datetime.fromisoformat(day).replace(tzinfo=zone)
    clock.set(midnight - timedelta(minutes=30))
    engine = engine_factory(event("hourly", "0 * * * *", tz=NY))
    step_through(engine, clock, midnight + timedelta(hours=hours, minutes=30), timedelta(minutes=30))
    local_days = [datetime.fromisoformat(s).astimezone(zone).date().isoformat() for s in scheduled(db_path, "hourly")]
    assert local_days.count(day) == hours  # no run in the gap; both repeated hours run


# -- misfire ------------------------------------------------------------------------------------


def down_for(engine_factory: Make, clock: FakeClock, text: str, hours: float) -> Engine:
    """Start an engine, stop it, leave the clock running `hours`, start another."""
    first = engine_factory(text)
    first.settle(clock.now(), timeout_s=SETTLE_S)
    first.shutdown()
    clock.advance(timedelta(hours=hours))
    return engine_factory()


def test_misfire_once_runs_one_catch_up_for_the_latest_missed_slot(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    engine = down_for(engine_factory, clock, event("h", "0 * * * *", misfire="once"), 5.5)
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    (run,) = runs(db_path, "h")
    assert run["scheduled_for"] == iso(datetime(2026, 1, 5, 5, 0, tzinfo=UTC))
    assert run["state"] == "succeeded"
    assert "catch-up once for 5 missed" in run["triggered_by"]


def test_misfire_all_runs_every_missed_slot(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = down_for(engine_factory, clock, event("h", "0 * * * *", misfire="all"), 5.5)
    for _ in range(6):
        engine.settle(clock.now(), timeout_s=SETTLE_S)
    got = runs(db_path, "h")
    assert [r["scheduled_for"] for r in got] == [iso(datetime(2026, 1, 5, h, 0, tzinfo=UTC)) for h in range(1, 6)]
    assert [r["state"] for r in got] == ["succeeded"] * 5


def test_misfire_skip_runs_nothing_until_the_next_slot(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = down_for(engine_factory, clock, event("h", "0 * * * *", misfire="skip"), 5.5)
    changes = engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert runs(db_path, "h") == []
    assert any("5 occurrence(s) missed" in (c.detail or "") for c in changes)
    clock.set(datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert scheduled(db_path, "h") == [iso(clock.now())]


def test_a_short_stop_within_grace_is_not_a_misfire(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    clock.set(datetime(2026, 1, 5, 0, 59, 30, tzinfo=UTC))
    engine = engine_factory(event("h", "0 * * * *", misfire="skip"))
    clock.set(datetime(2026, 1, 5, 1, 0, 20, tzinfo=UTC))  # the tick comes 20 s late
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert scheduled(db_path, "h") == [iso(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))]


# -- concurrency --------------------------------------------------------------------------------


def long_event(policy: str) -> str:
    return event("long", "* * * * *", command="sleep 30", concurrency=policy)


def two_occurrences(engine_factory: Make, clock: FakeClock, db_path: Path, policy: str) -> Engine:
    clock.set(datetime(2026, 1, 5, 0, 0, 30, tzinfo=UTC))
    engine = engine_factory(long_event(policy))
    clock.advance(timedelta(seconds=30))
    engine.tick(clock.now())
    assert [r["state"] for r in runs(db_path)] == ["running"]
    clock.advance(timedelta(minutes=1))
    engine.tick(clock.now())
    return engine


def test_concurrency_skip_skips_the_new_occurrence(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    two_occurrences(engine_factory, clock, db_path, "skip")
    first, second = runs(db_path)
    assert first["state"] == "running"
    assert second["state"] == "skipped"
    assert "run 1 is still running" in second["reason"]


def test_concurrency_queue_waits_behind_the_running_one(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = two_occurrences(engine_factory, clock, db_path, "queue")
    first, second = runs(db_path)
    assert (first["state"], second["state"]) == ("running", "waiting")
    assert "queued behind run 1" in second["waiting_reason"]
    engine.executors.kill(1, by="test", grace_s=1)
    tick_until(engine, lambda: runs(db_path)[1]["state"] == "running", now=clock.now(), what="the queued run to start")
    assert runs(db_path)[0]["state"] == "killed"


def test_concurrency_replace_kills_the_running_one(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = two_occurrences(engine_factory, clock, db_path, "replace")
    tick_until(
        engine, lambda: runs(db_path)[1]["state"] == "running", now=clock.now(), what="the replacing run to start"
    )
    first = runs(db_path)[0]
    assert first["state"] == "killed" and "replaced by run 2" in first["reason"]


# -- one-shots, @reboot ---------------------------------------------------------------------------


def test_at_one_shot_runs_once_at_its_time(engine_factory: Make, clock: FakeClock, db_path: Path, store: Store) -> None:
    engine = engine_factory(event("once", "at 2026-01-05T06:00", tz=NY))  # 11:00 UTC
    clock.set(datetime(2026, 1, 5, 10, 59, 59, tzinfo=UTC))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    assert runs(db_path) == []
    clock.set(datetime(2026, 1, 5, 11, 0, tzinfo=UTC))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    step_through(engine, clock, datetime(2026, 1, 8, tzinfo=UTC), timedelta(hours=6))
    assert [(r["scheduled_for"], r["state"]) for r in runs(db_path)] == [
        (iso(datetime(2026, 1, 5, 11, 0, tzinfo=UTC)), "succeeded")
    ]
    assert (store.event_row("once") or {})["next_fire_at"] is None


def test_reboot_event_runs_at_each_engine_start_and_not_otherwise(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    engine = engine_factory(event("warm", "@reboot"))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    step_through(engine, clock, clock.now() + timedelta(days=2), timedelta(hours=4))
    assert [(r["trigger"], r["state"]) for r in runs(db_path)] == [("reboot", "succeeded")]
    engine.shutdown()
    again = engine_factory()
    again.settle(clock.now(), timeout_s=SETTLE_S)
    assert [r["trigger"] for r in runs(db_path)] == ["reboot", "reboot"]


# -- reloading ----------------------------------------------------------------------------------


def test_changed_schedule_takes_effect_from_now(
    engine_factory: Make, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    engine = engine_factory(event("report", "0 6 * * *") + event("steady", "0 5 * * *"))
    clock.set(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    result = load_defs(db_path, event("report", "0 4 * * *") + event("steady", "0 5 * * *"), tmp_path, clock.now())
    assert result["changed"] == ["report"] and result["unchanged"] == ["steady"]
    step_through(engine, clock, datetime(2026, 1, 5, 7, 0, tzinfo=UTC), timedelta(minutes=30))
    assert scheduled(db_path, "report") == [iso(datetime(2026, 1, 5, 4, 0, tzinfo=UTC))]
    assert scheduled(db_path, "steady") == [iso(datetime(2026, 1, 5, 5, 0, tzinfo=UTC))]


def test_interval_change_counts_from_the_reload(
    engine_factory: Make, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    engine = engine_factory(event("poll", "every 2 hours"))
    clock.advance(timedelta(minutes=50))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    load_defs(db_path, event("poll", "every 30 minutes"), tmp_path, clock.now())
    reload_at = clock.now()
    step_through(engine, clock, reload_at + timedelta(minutes=95), timedelta(minutes=5))
    assert scheduled(db_path, "poll") == [iso(reload_at + timedelta(minutes=m)) for m in (30, 60, 90)]


def test_prune_retires_events_and_keeps_their_history_readable(
    engine_factory: Make, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    engine = engine_factory(event("keep", "*/10 * * * *") + event("gone", "*/10 * * * *", command="echo bye"))
    clock.set(datetime(2026, 1, 5, 0, 10, tzinfo=UTC))
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    result = load_defs(db_path, event("keep", "*/10 * * * *"), tmp_path, clock.now(), prune=True)
    assert result["pruned"] == ["gone"]
    step_through(engine, clock, datetime(2026, 1, 5, 1, 0, tzinfo=UTC), timedelta(minutes=10))
    assert len(scheduled(db_path, "keep")) == 6
    assert len(scheduled(db_path, "gone")) == 1
    history = cli("history", "gone", "--json", "--db", str(db_path))
    assert history.returncode == 0, history.stderr
    (run,) = json.loads(history.stdout)
    assert run["event"] == "gone" and run["state"] == "succeeded" and "bye" in run["output_tail"]
    shown = cli("show", "gone", "--json", "--db", str(db_path))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["runs"][0]["id"] == run["id"]
    listed = json.loads(cli("list", "--json", "--db", str(db_path)).stdout)
    assert [e["name"] for e in listed] == ["keep"]


@pytest.mark.sqlite_only  # SQLite's write lock held by another connection
@pytest.mark.parametrize("policy", ["skip", "replace"])
def test_a_locked_database_delays_the_tick_but_never_doubles_a_run(
    clock: FakeClock,
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    policy: str,
) -> None:
    """Ticks that cannot record their work retry it; they do not materialise it again
    (with replace, a second in-memory copy once 'replaced' the real run)."""
    monkeypatch.setenv("EVMAN_BUSY_TIMEOUT_MS", "50")
    load_defs(db_path, event("q", "*/15 * * * *", concurrency=policy), tmp_path, clock.now())
    engine = Engine(open_store(db_path), clock=clock, tick_s=0.05)
    engine.start()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    clock.set(datetime(2026, 1, 5, 0, 15, tzinfo=UTC))
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.6)  # several ticks fail to record their work meanwhile
        holder.execute("ROLLBACK")
        wait_until(lambda: [r["state"] for r in runs(db_path)] == ["succeeded"], what="the run")
        time.sleep(0.3)  # and no second run appears afterwards
    finally:
        holder.close()
        engine.stop()
        thread.join(timeout=15)
    assert [(r["scheduled_for"], r["state"]) for r in runs(db_path)] == [
        (iso(datetime(2026, 1, 5, 0, 15, tzinfo=UTC)), "succeeded")
    ]
    assert "stayed locked by another writer" in caplog.text
