"""Placement with several engines on one PostgreSQL database: an event that says hosts/tags runs
only on an engine that fits it; the others leave its runs unowned, with why they wait, for one
that fits to claim; a takeover hands on what the survivor does not fit; @reboot runs once per
fleet start. Real engines, real PostgreSQL, a fake clock for the schedules."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import open_store
from tests.fleet.common import TICK_S, Make, load, membership
from tests.outside import rows

GPU = """
[defaults]
timezone = "UTC"
[[event]]
name = "train"
call = "os:getcwd"
schedule = "every 10 seconds"
concurrency = "queue"
tags = ["gpu"]
[[event]]
name = "plain"
call = "os:getcwd"
schedule = "every 10 seconds"
concurrency = "queue"
"""


def engine_id(e: Engine) -> int:
    assert e.fleet is not None and e.fleet.token is not None
    return e.fleet.token.engine_id


def runs_of(dsn: str, event: str) -> list[dict[str, Any]]:
    return rows(dsn, f"SELECT * FROM runs WHERE event = '{event}' ORDER BY id")


def heartbeat(dsn: str, e: Engine) -> str:
    return str(rows(dsn, "SELECT heartbeat_at FROM engines WHERE id = ?", (engine_id(e),))[0]["heartbeat_at"])


def test_a_gpu_event_runs_only_on_an_engine_with_gpu(make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    load(pg_dsn, GPU, tmp_path, clock)
    plain = make(host="app1", tags=frozenset({"big"}))
    clock.advance(timedelta(seconds=10))
    plain.settle(clock.now())  # it claims both due events: it runs "plain", not "train"
    (waiting,) = runs_of(pg_dsn, "train")
    assert (waiting["state"], waiting["engine_id"]) == ("waiting", None)
    assert waiting["waiting_reason"] == "waiting for an engine with tags [gpu] (live engines offer: app1 [big])"
    assert [r["state"] for r in runs_of(pg_dsn, "plain")] == ["succeeded"]
    before = heartbeat(pg_dsn, plain)
    assert membership(plain).take_over(str(waiting["created_at"])) == ([], [])
    assert heartbeat(pg_dsn, plain) == before  # an unowned run it does not fit opens no transaction
    gpu = make(host="app2", tags=frozenset({"gpu"}))  # its join claims the waiting run
    for _ in range(3):
        clock.advance(timedelta(seconds=10))
        for e in (plain, gpu, plain):
            e.settle(clock.now())
    trains = runs_of(pg_dsn, "train")
    assert len(trains) == 4 and {r["state"] for r in trains} == {"succeeded"}
    assert {r["engine_id"] for r in trains} == {engine_id(gpu)}
    assert {r["host"] for r in trains} == {"app2"}


def test_an_event_for_a_host_waits_with_its_reason_until_an_engine_there_joins(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, GPU.replace('tags = ["gpu"]', 'hosts = ["web1"]'), tmp_path, clock)
    a, b = make(host="app1"), make(host="app2", tags=frozenset({"gpu"}))
    clock.advance(timedelta(seconds=10))
    for e in (a, b, a, b):
        e.settle(clock.now())
    (waiting,) = runs_of(pg_dsn, "train")
    assert (waiting["state"], waiting["engine_id"]) == ("waiting", None)
    assert waiting["waiting_reason"] in (
        "waiting for an engine on host web1 (live engines offer: app1 [], app2 [gpu])",
        "waiting for an engine on host web1 (live engines offer: app2 [gpu], app1 [])",
    )
    web1 = make(host="web1.example.com")  # a short name matches the engine's full one
    web1.settle(clock.now())
    (ran,) = runs_of(pg_dsn, "train")
    assert (ran["state"], ran["engine_id"], ran["host"]) == ("succeeded", engine_id(web1), "web1.example.com")


WAITS = (
    GPU.replace(
        'schedule = "every 10 seconds"\nconcurrency = "queue"\ntags',
        'schedule = "every 10 seconds"\nconcurrency = "queue"\nrequires = "success(never)"\ntags',
    ).replace(
        'name = "plain"\ncall = "os:getcwd"\nschedule = "every 10 seconds"\n',
        'name = "plain"\ncall = "os:getcwd"\nschedule = "every 10 seconds"\nrequires = "success(never)"\n',
    )
    + '[[event]]\nname = "never"\nrun = "true"\n'
)


def test_a_takeover_hands_waiting_runs_only_to_engines_that_fit(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, WAITS, tmp_path, clock)
    first = make(host="app1", tags=frozenset({"gpu"}))
    clock.advance(timedelta(seconds=10))
    first.tick()
    assert {(r["event"], r["state"], r["engine_id"]) for r in rows(pg_dsn, "SELECT * FROM runs")} == {
        ("train", "waiting", engine_id(first)),
        ("plain", "waiting", engine_id(first)),
    }
    survivor = make(host="app2")
    first.stop()
    first.shutdown()  # a graceful stop: the survivor takes over at its next tick
    survivor.tick()
    (plain,), (train,) = runs_of(pg_dsn, "plain"), runs_of(pg_dsn, "train")
    assert (plain["state"], plain["engine_id"]) == ("waiting", engine_id(survivor))
    assert (train["state"], train["engine_id"]) == ("waiting", None)
    assert train["waiting_reason"] == "waiting for an engine with tags [gpu] (live engines offer: app2 [])"
    assert [r.event for r in survivor.active_runs()] == ["plain"]
    survivor.tick()
    assert runs_of(pg_dsn, "train")[0]["engine_id"] is None  # it never takes it back
    gpu = make(host="app3", tags=frozenset({"gpu"}))
    (train,) = runs_of(pg_dsn, "train")
    assert (train["state"], train["engine_id"]) == ("waiting", engine_id(gpu))
    assert [r.event for r in gpu.active_runs()] == ["train"]


def test_a_running_run_of_a_dead_engine_is_judged_by_the_survivor_whatever_its_tags(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(
        pg_dsn,
        GPU.replace(
            'call = "os:getcwd"\nschedule = "every 10 seconds"\nconcurrency = "queue"\ntags',
            'call = "time:sleep"\nschedule = "every 10 seconds"\nconcurrency = "queue"\non_lost = "rerun"\ntags',
        ),
        tmp_path,
        clock,
    )
    store = open_store(pg_dsn)  # "train" was running (a callable) in an engine that died with it
    store.apply_statements(
        [
            (
                "INSERT INTO runs (event, state, trigger, scheduled_for, created_at, started_at, "
                "host) VALUES ('train', 'running', 'trigger', ?, 'x', ?, 'gone')",
                [("2026-01-05T00:00:00+00:00", "2026-01-05T00:00:00+00:00")],
            )
        ]
    )
    store.close()
    survivor = make(host="app2")
    got = {r["attempt"]: (r["state"], r["engine_id"]) for r in runs_of(pg_dsn, "train")}
    assert got == {1: ("lost", engine_id(survivor)), 2: ("waiting", None)}  # the rerun waits for a gpu


REBOOT = """
[defaults]
timezone = "UTC"
[[event]]
name = "warm"
call = "os:getcwd"
schedule = "@reboot"
"""


def test_reboot_runs_once_per_fleet_start(make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    load(pg_dsn, REBOOT, tmp_path, clock)
    a = make(host="app1")
    b = make(host="app2")  # joins a live fleet: no @reboot
    assert membership(a).starts_fleet and not membership(b).starts_fleet
    a.settle(clock.now())
    b.settle(clock.now())
    assert [(r["state"], r["triggered_by"]) for r in runs_of(pg_dsn, "warm")] == [("succeeded", "engine start")]
    a.stop()
    a.shutdown()
    clock.advance(timedelta(seconds=1))
    c = make(host="app1")  # b is still live: a restart of one engine is no fleet start
    b.stop()
    b.shutdown()
    c.stop()
    c.shutdown()
    clock.advance(timedelta(seconds=1))
    make(host="app3").settle(clock.now())  # every engine had stopped: the fleet starts again
    assert [r["state"] for r in runs_of(pg_dsn, "warm")] == ["succeeded", "succeeded"]


def test_engines_starting_together_queue_reboot_once(pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    load(pg_dsn, REBOOT, tmp_path, clock)
    engines = [
        Engine(open_store(pg_dsn), clock=clock, tick_s=TICK_S, logs_dir=tmp_path / "logs", host=f"app{n}")
        for n in range(4)
    ]
    gate = threading.Barrier(len(engines))

    def start(e: Engine) -> None:
        gate.wait()
        e.start()

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sum(bool(membership(e).starts_fleet) for e in engines) == 1
        assert len(runs_of(pg_dsn, "warm")) == 1
    finally:
        for e in engines:
            e.executors.shutdown(wait_s=0)
            membership(e).stop_listening()


def test_reboot_honours_placement(make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    load(pg_dsn, REBOOT + 'tags = ["gpu"]\n', tmp_path, clock)
    a = make(host="app1")
    a.settle(clock.now())
    (run,) = runs_of(pg_dsn, "warm")
    assert (run["state"], run["engine_id"]) == ("waiting", None)
    gpu = make(host="app2", tags=frozenset({"gpu"}))
    gpu.settle(clock.now())
    (run,) = runs_of(pg_dsn, "warm")
    assert (run["state"], run["engine_id"]) == ("succeeded", engine_id(gpu)), run["reason"]


def test_a_change_of_tags_hands_on_the_runs_an_engine_holds(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, WAITS.replace('tags = ["gpu"]\n', ""), tmp_path, clock)
    a = make(host="app1")
    clock.advance(timedelta(seconds=10))
    a.tick()
    assert runs_of(pg_dsn, "train")[0]["engine_id"] == engine_id(a)
    load(pg_dsn, WAITS, tmp_path, clock)  # "train" now asks for a gpu, which a does not offer
    a.tick()
    (train,) = runs_of(pg_dsn, "train")
    assert (train["state"], train["engine_id"]) == ("waiting", None)
    assert "with tags [gpu]" in train["waiting_reason"]
    assert [r.event for r in a.active_runs()] == ["plain"]


def test_a_run_no_engine_fits_is_still_said_late_and_missed(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(
        pg_dsn,
        GPU.replace('tags = ["gpu"]', 'tags = ["gpu"]\nlate_after = "+1m"\nwindow = { latest = "+5m" }'),
        tmp_path,
        clock,
    )
    a, b = make(host="app1"), make(host="app2")
    clock.advance(timedelta(seconds=10))
    a.tick()
    b.tick()
    first = runs_of(pg_dsn, "train")[0]
    assert (first["state"], first["engine_id"]) == ("waiting", None)
    clock.advance(timedelta(minutes=1))
    for e in (a, b, a, b):
        e.tick()
    first = runs_of(pg_dsn, "train")[0]
    assert (first["state"], first["engine_id"], first["flags"]) == ("waiting", None, "late")
    assert "waiting for an engine with tags [gpu]" in first["waiting_reason"]
    clock.advance(timedelta(minutes=5))
    for e in (a, b, a, b):
        e.tick()
    first = runs_of(pg_dsn, "train")[0]
    assert first["state"] == "missed" and "waiting for an engine with tags [gpu]" in first["reason"]
    alerts = rows(pg_dsn, "SELECT * FROM alerts WHERE event = 'train' ORDER BY id")
    assert {"late", "missed"} <= {a["kind"] for a in alerts}  # (foresight says at_risk too)


def test_with_sqlite_placement_is_ignored_and_load_says_so(tmp_path: Path, clock: FakeClock) -> None:
    from click.testing import CliRunner

    from evman.console.cli.main import main

    defs, db = tmp_path / "defs.toml", tmp_path / "evman.db"
    defs.write_text(GPU.replace('tags = ["gpu"]', 'tags = ["gpu"]\nhosts = ["web9"]'))
    done = CliRunner().invoke(main, ["load", str(defs), "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert "warning: the hosts/tags of train are ignored" in done.stderr
    assert "one engine runs every event" in done.stderr
    engine = Engine(open_store(db), clock=clock, tick_s=TICK_S, logs_dir=tmp_path / "logs", host="app1")
    engine.start()
    try:
        clock.advance(timedelta(seconds=15))  # load used the real clock
        engine.settle(clock.now())
        states = {r["event"]: r["state"] for r in rows(str(db), "SELECT event, state FROM runs")}
    finally:
        engine.executors.shutdown(wait_s=0)
    assert states == {"train": "succeeded", "plain": "succeeded"}


def test_placement_ignores_case_and_says_what_it_needs() -> None:
    from evman.engine.fleet.placement import Seat, waiting_reason
    from evman.engine.model import EventSpec

    seat = Seat("Web1.Example.com", frozenset({"gpu"}))
    assert seat.fits(EventSpec(name="a", hosts=("web1",), tags=("GPU",)))
    assert not seat.fits(EventSpec(name="a", hosts=("web2", "web3")))
    spec = EventSpec(name="a", hosts=("web2", "web3"), tags=("gpu", "big"))
    assert waiting_reason(spec, [seat, Seat("app2")]) == (
        "waiting for an engine on one of hosts web2, web3 with tags [gpu, big] "
        "(live engines offer: Web1.Example.com [gpu], app2 [])"
    )


def ask(dsn: str, verb: str, target: str) -> int:
    from tests.outside import connect

    conn = connect(dsn)
    try:
        return int(
            conn.execute(
                "INSERT INTO requests (verb, target, requested_by) VALUES (?, ?, 'test') RETURNING id", (verb, target)
            ).fetchall()[0]["id"]
        )
    finally:
        conn.close()


def test_a_run_no_engine_fits_is_skipped_behind_and_can_be_killed(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    load(pg_dsn, GPU.replace('concurrency = "queue"\ntags', "tags"), tmp_path, clock)  # skip, the default
    a, b = make(host="app1"), make(host="app2")
    for _ in range(2):
        clock.advance(timedelta(seconds=10))
        for e in (a, b):
            e.tick()
    first, second = runs_of(pg_dsn, "train")
    assert (first["state"], first["engine_id"]) == ("waiting", None)
    assert second["state"] == "skipped" and "on no engine yet" in second["reason"]
    by_run, by_event = ask(pg_dsn, "kill", f"run:{first['id']}"), ask(pg_dsn, "kill", "train")
    for e in (b, a, b):
        e.tick()
    assert runs_of(pg_dsn, "train")[0]["state"] == "killed"
    answers = {r["id"]: r["outcome"] for r in rows(pg_dsn, "SELECT id, outcome FROM requests")}
    assert answers[by_run] == "ok"
    assert answers[by_event] is not None  # answered too ("nothing to kill" once the first did)
