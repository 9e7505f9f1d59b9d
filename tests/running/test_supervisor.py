"""The command supervisor with real processes: the exit record it keeps on each log, when it
is started, and SIGTERM passed on to the commands' process groups."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.running.supervisor_client import read_exit
from evman.engine.store import Store, open_store
from tests.outside import found

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


def load_text(store: Store, text: str, base: Path, now: datetime) -> None:
    import textwrap

    defs = parse_definitions(
        textwrap.dedent(text), source=str(base / "defs.toml"), base_dir=base, known_events=store.event_names()
    )
    catalog.save(store, defs, now=now)


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
    run = found(store.run(1))
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
    assert found(store.run(1))["exit_code"] == 4


def test_sigterm_to_the_supervisor_reaches_the_commands(engine_factory: Make, clock: FakeClock, store: Store) -> None:
    engine = engine_factory(COMMANDS)
    _trigger(engine, "sleeper")
    engine.tick(clock.now())
    pid = int(found(store.run(1))["pid"])
    os.kill(engine.executors.supervisor.pid or 0, signal.SIGTERM)
    engine.settle(clock.now(), timeout_s=60)
    run = found(store.run(1))
    assert (run["state"], run["exit_code"], run["reason"]) == ("failed", -15, "ended by signal SIGTERM")
    assert not Path(f"/proc/{pid}").exists() or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


# -- what a burst of commands finds ready ---------------------------------------------------------


def test_a_program_is_looked_up_on_the_commands_path_once_per_batch(
    engine_factory: Make, clock: FakeClock, store: Store, tmp_path: Path
) -> None:
    """The supervisor finds `probe` on the command's own PATH (the first folder that has it,
    as exec would) and starts it by its full path; a program put earlier on the PATH after a
    batch is found by the next batch."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    _script(second / "probe", "from second")
    engine = engine_factory(f"""
        [[event]]
        name = "probe"
        run = "probe"
        env = {{ PATH = "{first}:{second}:/usr/bin:/bin" }}
    """)
    _trigger(engine, "probe")
    engine.settle(clock.now(), timeout_s=60)
    _script(first / "probe", "from first")
    _trigger(engine, "probe")
    engine.settle(clock.now(), timeout_s=60)
    runs = [found(store.run(n)) for n in (1, 2)]
    assert [r["state"] for r in runs] == ["succeeded", "succeeded"]
    assert [Path(r["log_path"]).read_text().strip() for r in runs] == ["from second", "from first"]


def test_find_program_takes_the_first_executable_file_and_leaves_relative_folders_to_exec(tmp_path: Path) -> None:
    from evman.engine.running.spawning import find_program

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "tool").write_text("not executable")
    (tmp_path / "b" / "tool").mkdir(parents=True)  # a folder of that name
    _script(tmp_path / "c" / "tool", "")
    path = os.pathsep.join(str(tmp_path / d) for d in "abc")
    assert find_program("tool", path) == str(tmp_path / "c" / "tool")
    assert find_program("nothing", path) is None
    assert find_program("tool", "relative:" + path) is None  # depends on the cwd: exec searches


def test_log_folders_are_made_before_a_burst_of_commands_falls_due(
    engine_factory: Make, clock: FakeClock, store: Store
) -> None:
    from datetime import timedelta

    due = (clock.now() + timedelta(seconds=1)).isoformat()
    engine = engine_factory(
        "".join(f'[[event]]\nname = "c{i}"\nrun = "true"\nschedule = "at {due}"\n' for i in range(20))
    )
    engine.tick(clock.now())
    engine.between_ticks()  # as the loop does before it waits: the prefetch; the burst is a second away
    folders = [engine.executors.logs_dir / f"c{i}" for i in range(20)]
    deadline = time.monotonic() + 20
    while not all(f.is_dir() for f in folders) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(f.is_dir() for f in folders)
    assert store.value("SELECT count(*) FROM runs") == 0  # ahead of the burst itself
    assert all(oct(f.stat().st_mode & 0o777) == oct(0o700) for f in folders)


def _script(path: Path, says: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
