"""`user` is checked where the run runs (issue 24): `evman load` only warns about a user the
loading machine lacks (the event may be placed on a host that has it), and the engine that
starts the run fails it with a clear reason when its own host lacks the user, or when it may
not switch to it (not root). Real files, real engine, real commands."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store
from tests.engine_cli import cli
from tests.outside import rows

ELSEWHERE = """
[defaults]
timezone = "UTC"
[[event]]
name = "graphs"
run = "id -u"
user = "munin-nowhere"
cwd = "/"
"""


def test_load_warns_about_a_user_this_machine_lacks_and_loads(tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text(ELSEWHERE + 'hosts = ["web1"]\n')
    done = cli("load", str(defs), "--db", str(tmp_path / "evman.db"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[0] == (
        f"{defs}:7: event 'graphs': key 'user': warning: no user 'munin-nowhere' on this machine "
        f"({os.uname().nodename}); evman checks it on the engine that runs the event (hosts web1), "
        "and a run there fails if that host has no such user"
    )
    assert "ok" not in done.stderr
    assert cli("validate", str(defs)).returncode == 0
    (event,) = rows(tmp_path / "evman.db", "SELECT name, spec FROM events")
    assert '"user": "munin-nowhere"' in event["spec"]


def test_a_run_whose_user_this_host_lacks_fails_with_the_reason(
    engine_factory: Callable[..., Engine], store: Store, clock: FakeClock
) -> None:
    engine = engine_factory(ELSEWHERE)
    store.add_request("trigger", "graphs")
    engine.settle(clock.now())
    (run,) = rows(store.target, "SELECT state, reason, pid FROM runs")  # type: ignore[arg-type]
    assert run["state"] == "failed" and run["pid"] is None
    assert run["reason"] == (
        f"user 'munin-nowhere' does not exist on {engine.executors.host}; create it there, or "
        "place the event on a host that has it (hosts = [...])"
    )


def test_a_run_as_another_user_by_an_engine_that_is_not_root_fails_with_the_reason(
    engine_factory: Callable[..., Engine], store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = pwd.getpwnam("nobody")
    engine = engine_factory(ELSEWHERE.replace("munin-nowhere", "root"))
    monkeypatch.setattr(os, "geteuid", lambda: nobody.pw_uid)
    store.add_request("trigger", "graphs")
    engine.settle(clock.now())
    (run,) = rows(store.target, "SELECT state, reason FROM runs")  # type: ignore[arg-type]
    assert run["state"] == "failed"
    assert run["reason"] == (
        "evman runs commands as another user only when it runs as root; this engine runs as "
        f"'nobody' on {engine.executors.host}, the event asks for user 'root'"
    )
