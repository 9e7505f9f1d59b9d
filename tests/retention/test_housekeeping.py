"""Retention: a housekeeping pass deletes what is past its horizon and nothing that is kept.

History is written as the engine writes it (tests/retention/history.py) into a real database,
with real log files; the pass runs at a FakeClock's time, on both backends."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.ranks import HISTORY_RUNS
from evman.engine.retention import Housekeeper
from evman.engine.store import Store, open_store
from tests.conftest import load_text
from tests.retention.history import add_active, add_runs, ids, raise_alert

pytestmark = pytest.mark.backends

DAY = timedelta(days=1)
DEFS = """
    [defaults]
    timezone = "UTC"
    keep = { runs = "10d", logs = "3d", requests = "2d", alerts = "5d" }
    [[event]]
    name = "hourly"
    run = "true"
    [[event]]
    name = "audit"
    run = "true"
    keep = { runs = "400d", logs = "400d" }
    [[event]]
    name = "reader"
    run = "true"
    requires = 'success(hourly, "20d")'
"""


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def keeper(store: Store, clock: FakeClock, tmp_path: Path) -> Housekeeper:
    load_text(store, DEFS.replace("requires = 'success(hourly, \"20d\")'", ""), tmp_path, clock.now())
    return Housekeeper(store, clock, host="here")  # the host history.py's runs ran on


def test_logs_go_after_keep_logs_and_runs_after_keep_runs(store, clock, keeper, logs) -> None:
    start = clock.now() - 30 * DAY
    made = add_runs(store, logs, "hourly", start, 30 * 24, timedelta(hours=1))
    report = keeper.run_pass(clock.now())
    left = ids(store, "hourly")
    # runs: the last 10 days, plus the last HISTORY_RUNS successes (inside them anyway)
    cutoff = iso(clock.now() - 10 * DAY)
    assert all(store.run(r)["ended_at"] >= cutoff for r in left)
    assert len(left) in range(10 * 24 - 1, 10 * 24 + 2)
    assert report.runs == len(made) - len(left)
    # logs: only the last 3 days are on disk; the other kept runs are marked pruned
    on_disk = {r for r in left if os.path.exists(store.run(r)["log_path"])}
    pruned = {r for r in left if store.run(r)["log_pruned_at"] is not None}
    assert on_disk | pruned == left and not on_disk & pruned
    assert len(on_disk) in range(3 * 24 - 1, 3 * 24 + 2)
    assert report.logs == len(made) - len(on_disk)
    assert not any(os.path.exists(os.path.join(logs, "hourly", f"{r}.log")) for r in set(made) - left)


def test_an_events_own_keep_beats_the_defaults(store, clock, keeper, logs) -> None:
    made = add_runs(store, logs, "audit", clock.now() - 100 * DAY, 100, DAY)
    keeper.run_pass(clock.now())
    assert ids(store, "audit") == set(made)
    assert all(os.path.exists(store.run(r)["log_path"]) for r in made)


def test_what_is_never_deleted(store, clock, keeper, logs) -> None:
    old = clock.now() - 60 * DAY
    successes = add_runs(store, logs, "hourly", old, 40, timedelta(minutes=5))
    lost = add_runs(store, logs, "hourly", old + DAY, 3, timedelta(minutes=5), state="lost")
    failed = add_runs(store, logs, "hourly", old + 2 * DAY, 3, timedelta(minutes=5), state="failed")
    alerted = add_runs(store, logs, "hourly", old + 3 * DAY, 3, timedelta(minutes=5), state="killed")
    later = add_runs(store, logs, "hourly", old + 4 * DAY, 3, timedelta(minutes=5), state="killed")
    raise_alert(store, "hourly", "failed", clock.now(), alerted[0])
    active = add_active(store, "hourly", old - DAY)
    keeper.run_pass(clock.now())
    kept = ids(store, "hourly")
    assert set(successes[-HISTORY_RUNS:]) <= kept  # foresight's and show's durations
    assert not set(successes[:-HISTORY_RUNS]) & kept
    assert {lost[-1], failed[-1], later[-1], alerted[0], active} <= kept  # last of each outcome, alerted, active
    assert kept == set(successes[-HISTORY_RUNS:]) | {lost[-1], failed[-1], later[-1], alerted[0], active}
    for run_id in {lost[-1], failed[-1], later[-1], alerted[0]}:  # their logs too: the last of each outcome
        assert os.path.exists(store.run(run_id)["log_path"])
    assert not any(os.path.exists(store.run(r)["log_path"]) for r in successes[-HISTORY_RUNS:-1])  # rows only


def test_a_requires_look_back_keeps_what_it_can_see(store, clock, logs, tmp_path) -> None:
    load_text(store, DEFS, tmp_path, clock.now())
    made = add_runs(store, logs, "hourly", clock.now() - 30 * DAY, 30, DAY)
    Housekeeper(store, clock, host="here").run_pass(clock.now())
    left = ids(store, "hourly")
    assert left <= set(made) and len(left) in (20, 21)  # 20 days, not 10


def test_a_run_that_finished_since_the_last_pass_counts(store, clock, keeper, logs) -> None:
    """The kept runs are read incrementally: a run active at one pass and lost by the next is
    then the last `lost` run, and is kept."""
    old = clock.now() - 60 * DAY
    add_runs(store, logs, "hourly", old, 30, timedelta(hours=1))
    active = add_active(store, "hourly", old + DAY + timedelta(minutes=7))
    add_runs(store, logs, "hourly", old + 2 * DAY, 5, timedelta(hours=1))
    keeper.run_pass(clock.now())
    with store.transaction():
        store.execute("UPDATE runs SET state = 'lost', ended_at = ? WHERE id = ?", (iso(old + DAY), active))
    keeper.run_pass(clock.now())
    assert active in ids(store, "hourly")


def test_handled_requests_resolved_alerts_and_old_deliveries_are_bounded(store, clock, keeper) -> None:
    then = clock.now() - 8 * DAY
    old_req = store.add_request("trigger", "hourly", requested_by="t", now=then)
    open_req = store.add_request("trigger", "hourly", requested_by="t", now=then)
    new_req = store.add_request("trigger", "hourly", requested_by="t", now=clock.now())
    for request, at in ((old_req, then), (new_req, clock.now())):
        with store.transaction():
            store.execute("UPDATE requests SET handled_at = ?, outcome = 'ok' WHERE id = ?", (iso(at), request))
    gone = raise_alert(store, "hourly", "failed", then)
    store.resolve_alerts("hourly", "failed", then)
    still = raise_alert(store, "audit", "failed", then)
    for alert, at in ((gone, then), (still, then), (still, clock.now())):
        with store.transaction():
            store.execute(
                "INSERT INTO deliveries (alert_id, attempted_at, outcome) VALUES (?, ?, 'failed')", (alert, iso(at))
            )
    report = keeper.run_pass(clock.now())
    assert {r[0] for r in store.rows("SELECT id FROM requests")} == {open_req, new_req}
    assert [r[0] for r in store.rows("SELECT id FROM alerts")] == [still]
    assert [r[0] for r in store.rows("SELECT alert_id FROM deliveries")] == [still]  # the recent one
    assert (report.requests, report.alerts, report.deliveries) == (1, 1, 2)


def test_a_pass_killed_between_marking_and_unlinking_is_finished_by_the_next(store, clock, keeper, logs) -> None:
    made = add_runs(store, logs, "hourly", clock.now() - 5 * DAY, 3, timedelta(hours=1))
    paths = [store.run(r)["log_path"] for r in made]
    store.mark_logs_pruned([(r, p, "here") for r, p in zip(made, paths, strict=True)], str(iso(clock.now())))
    assert all(os.path.exists(p) for p in paths)  # marked, not yet deleted: the state a SIGKILL leaves
    keeper.run_pass(clock.now())
    assert not any(os.path.exists(p) for p in paths)
    assert store.rows("SELECT * FROM pruned_logs") == []


def test_big_deletions_go_in_many_small_batches(store, clock, keeper, logs) -> None:
    add_runs(store, None, "hourly", clock.now() - 100 * DAY, 3000, timedelta(minutes=10))
    report = keeper.run_pass(clock.now())
    assert report.runs > 2500
    assert report.batches >= report.runs // 1000 + report.logs // 1000  # never more than 1,000 rows at once


@pytest.mark.sqlite_only
def test_sqlite_gives_the_space_back(store, clock, keeper, db_path) -> None:
    add_runs(store, None, "hourly", clock.now() - 100 * DAY, 20_000, timedelta(minutes=5), text="x" * 200 + "\n")
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = os.path.getsize(db_path)
    report = keeper.run_pass(clock.now())
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert report.runs > 15_000 and report.pages_freed > 0
    assert os.path.getsize(db_path) < before / 2


def test_with_several_engines_one_takes_the_rows_pass(store, clock, keeper, db_path) -> None:
    other = Housekeeper(open_store(db_path), clock, host="here")
    try:
        first, second = keeper.run_pass(clock.now()), other.run_pass(clock.now())
        assert (first.rows_pass, second.rows_pass) == (True, False)
        clock.advance(timedelta(seconds=keeper.every_s))
        assert other.run_pass(clock.now()).rows_pass
    finally:
        other.store.close()


def test_with_several_engines_each_host_deletes_only_the_logs_it_wrote(store, clock, keeper, logs, backend) -> None:
    made = add_runs(store, logs, "hourly", clock.now() - 20 * DAY, 30, timedelta(hours=1))[:10]  # 20 newer kept
    paths = [store.run(r)["log_path"] for r in made]
    elsewhere = Housekeeper(store, clock, host="another-host")
    elsewhere.run_pass(clock.now())
    on_disk = [os.path.exists(path) for path in paths]
    assert on_disk == ([True] * 10 if backend == "postgres" else [False] * 10)  # SQLite: one engine, every log
    keeper.run_pass(clock.now() + timedelta(seconds=keeper.every_s))
    assert not ids(store, "hourly") & set(made)
    assert not any(os.path.exists(path) for path in paths)  # the host that wrote them deleted them
    assert store.rows("SELECT * FROM pruned_logs") == []
