"""The command supervisor with real processes: the exit record it keeps on each log, when it
is started, and SIGTERM passed on to the commands' process groups."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.running.supervisor_client import read_exit
from evman.engine.store import Store, open_store

Make = Callable[..., Engine]

COMMANDS = """
    [[event]]
    name = "says"
    shell = "echo hi; exit 4"
    [[event]]
    name = "sleeper"
    run = "sleep 30"
"""
CALLABLE = """
    [[event]]
    name = "inside"
    call = "os:getpid"
"""


def load_text(store: Store, text: str, base: Path, now: object) -> None:
    import textwrap

    defs = parse_definitions(
        textwrap.dedent(text), source=str(base / "defs.toml"), base_dir=base, known_events=store.event_names()
    )
    catalog.save(store, defs, now=now)  # type: ignore[arg-type]


def _trigger(engine: Engine, name: str) -> None:
    assert engine.store.path is not None
    other = open_store(engine.store.path)
    try:
        other.add_request("trigger", name, requested_by="test")
    finally:
        other.close()


def test_the_exit_record_on_the_log_says_how_the_command_ended(
    engine_factory: Make, clock: FakeClock, store: Store
) -> None:
    engine = engine_factory(COMMANDS)
    _trigger(engine, "says")
    engine.settle(clock.now(), timeout_s=60)
    run = store.run(1)
    assert (run["state"], run["exit_code"]) == ("failed", 4)
    record = read_exit(run["log_path"])
    assert record is not None
    assert (record.run_id, record.phase, record.pid, record.exit_code, record.signal) == (
        1,
        "main",
        run["pid"],
        4,
        None,
    )
    assert record.started_at <= record.ended_at <= time.time()
    assert record.since_ns is not None and record.since_ns <= os.stat(run["log_path"]).st_mtime_ns
    assert record.supervisor == engine.executors.supervisor.pid != os.getpid()
    assert os.getxattr(run["log_path"], "user.evman.exit")  # on the log itself, one attribute


def test_an_engine_of_callables_starts_no_supervisor(engine_factory: Make, clock: FakeClock) -> None:
    engine = engine_factory(CALLABLE)
    _trigger(engine, "inside")
    engine.settle(clock.now())
    assert engine.executors.supervisor.pid is None


def test_the_supervisor_starts_with_an_engine_that_has_commands(engine_factory: Make) -> None:
    engine = engine_factory(COMMANDS)
    pid = engine.executors.supervisor.pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    with open(f"/proc/{pid}/stat") as fh:
        assert int(fh.read().rsplit(")", 1)[1].split()[3]) == pid  # a session of its own


def test_a_command_loaded_later_starts_it_once_its_spec_is_read(
    engine_factory: Make, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    engine = engine_factory(CALLABLE)
    assert engine.executors.supervisor.pid is None
    load_text(store, CALLABLE + COMMANDS, tmp_path, clock.now())
    _trigger(engine, "says")
    engine.tick(clock.now())  # reads the spec: the supervisor boots while the run is recorded
    assert engine.executors.supervisor.pid is not None
    engine.settle(clock.now(), timeout_s=60)
    assert store.run(1)["exit_code"] == 4


def test_sigterm_to_the_supervisor_reaches_the_commands(engine_factory: Make, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(COMMANDS)
    _trigger(engine, "sleeper")
    engine.tick(clock.now())
    pid = int(store.run(1)["pid"])
    os.kill(engine.executors.supervisor.pid or 0, signal.SIGTERM)
    engine.settle(clock.now(), timeout_s=60)
    run = store.run(1)
    assert (run["state"], run["exit_code"], run["reason"]) == ("failed", -15, "ended by signal SIGTERM")
    assert not Path(f"/proc/{pid}").exists() or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
