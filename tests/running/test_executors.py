"""Executors with real parts: child processes and their environment, output capture, callables,
HTTP against a local server, and killing a whole process group."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from tests.engine_cli import (
    SETTLE_S,
    group_gone,
    insert_request,
    is_zombie,
    kill_running_commands,  # noqa: F401 (an autouse fixture)
    pids_in_group,
    reap,
    runs,
    set_child_subreaper,
    tick_until,
    wait_until,
)

Make = Callable[..., Engine]
CALLJOBS = Path(__file__).resolve().parent / "calljobs"


def run_once(engine: Engine, clock: FakeClock, db: Path, name: str) -> dict[str, object]:
    """Trigger `name` through the mailbox and let its run finish; return the run row."""
    insert_request(db, "trigger", name)
    engine.settle(clock.now(), timeout_s=SETTLE_S)
    return runs(db, name)[-1]


def test_command_sees_evman_variables_its_env_and_its_cwd(
    engine_factory: Make, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    engine = engine_factory(f"""
        [[event]]
        name = "env-probe"
        shell = 'echo "E=$EVMAN_EVENT R=$EVMAN_RUN_ID A=$EVMAN_ATTEMPT S=$EVMAN_SCHEDULED_FOR C=$COLOUR"; pwd'
        cwd = {json.dumps(str(work))}
        env = {{ COLOUR = "teal" }}
    """)
    run = run_once(engine, clock, db_path, "env-probe")
    assert run["state"] == "succeeded", run["reason"]
    first, second = str(run["output_tail"]).splitlines()
    assert first == (f"E=env-probe R={run['id']} A=1 S={run['scheduled_for']} C=teal")
    assert second == str(work)


def test_stdout_and_stderr_are_captured_tail_in_db_whole_in_log(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    engine = engine_factory("""
        [[event]]
        name = "chatty"
        shell = "echo first-line; echo to-stderr >&2; seq 1 40000; echo last-line >&2"
    """)
    run = run_once(engine, clock, db_path, "chatty")
    assert run["state"] == "succeeded"
    tail = str(run["output_tail"])
    assert tail.rstrip().endswith("40000\nlast-line")
    assert len(tail.encode()) <= 64 * 1024 and "first-line" not in tail
    log = Path(str(run["log_path"])).read_text()
    assert log.startswith("first-line\nto-stderr\n1\n2\n") and log.endswith("40000\nlast-line\n")
    assert Path(str(run["log_path"])).stat().st_size > 64 * 1024


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("no-such-command-evman-test --flag", "command not found: 'no-such-command-evman-test'"),
        ("/nonexistent/bin/tool", "command not found: '/nonexistent/bin/tool'"),
    ],
)
def test_a_missing_command_fails_the_run_not_the_engine(
    engine_factory: Make, clock: FakeClock, db_path: Path, command: str, expected: str
) -> None:
    engine = engine_factory(f"""
        [[event]]
        name = "ghost"
        run = "{command}"
        [[event]]
        name = "fine"
        run = "true"
    """)
    run = run_once(engine, clock, db_path, "ghost")
    assert run["state"] == "failed"
    assert expected in str(run["reason"])
    assert run_once(engine, clock, db_path, "fine")["state"] == "succeeded"  # the engine goes on
    alerts = [a["kind"] for a in engine.store.alerts(event="ghost")]
    assert alerts == ["failed"]


def call_events() -> str:
    cwd = json.dumps(str(CALLJOBS))
    return "".join(
        f"""
        [[event]]
        name = "{name}"
        call = "fdn_calljobs:{func}"
        cwd = {cwd}
        env = {{ COLOUR = "teal" }}
    """
        for name, func in [("plain", "plain"), ("ctx", "with_context"), ("boom", "explode"), ("no", "says_no")]
    )


def test_callable_without_a_context_argument(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = engine_factory(call_events())
    run = run_once(engine, clock, db_path, "plain")
    assert run["state"] == "succeeded" and run["exit_code"] == 0
    assert "returned: 'plain ran'" in str(run["output_tail"])


def test_callable_with_a_context_argument(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = engine_factory(call_events())
    run = run_once(engine, clock, db_path, "ctx")
    assert run["state"] == "succeeded"
    assert f"event=ctx run={run['id']} attempt=1 scheduled={run['scheduled_for']} colour=teal" in str(
        run["output_tail"]
    )


def test_callable_exception_and_false_are_failures(engine_factory: Make, clock: FakeClock, db_path: Path) -> None:
    engine = engine_factory(call_events())
    boom = run_once(engine, clock, db_path, "boom")
    assert boom["state"] == "failed"
    assert boom["reason"] == "RuntimeError: the flux capacitor is empty"
    assert "Traceback" in str(boom["output_tail"]) and "explode" in str(boom["output_tail"])
    no = run_once(engine, clock, db_path, "no")
    assert no["state"] == "failed" and "returned False" in str(no["reason"])


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = (200, b"all fine") if self.path == "/ok" else (500, b"it broke")
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_call_checks_the_status(engine_factory: Make, clock: FakeClock, db_path: Path, http_server: str) -> None:
    engine = engine_factory(f"""
        [[event]]
        name = "ping-ok"
        http = {{ url = "{http_server}/ok" }}
        [[event]]
        name = "ping-bad"
        http = {{ url = "{http_server}/bad", expect = 200 }}
    """)
    ok = run_once(engine, clock, db_path, "ping-ok")
    assert ok["state"] == "succeeded", ok["reason"]
    assert "HTTP 200" in str(ok["output_tail"]) and "all fine" in str(ok["output_tail"])
    bad = run_once(engine, clock, db_path, "ping-bad")
    assert bad["state"] == "failed" and bad["reason"] == "HTTP 500, expected 200"
    assert bad["exit_code"] == 500 and "it broke" in str(bad["output_tail"])


# -- killing a process group --------------------------------------------------------------------


@pytest.fixture
def subreaper() -> Iterator[None]:
    set_child_subreaper(True)
    yield
    set_child_subreaper(False)


def start_family(engine: Engine, clock: FakeClock, db: Path, name: str) -> int:
    insert_request(db, "trigger", name)
    pid = tick_until(
        engine,
        lambda: runs(db, name)[-1]["pid"] if runs(db, name) else None,
        now=clock.now(),
        what="the run to record its pid",
    )
    wait_until(lambda: len(pids_in_group(int(pid))) >= 3, what="the shell and both sleeps")
    return int(pid)


def assert_group_ends(pgid: int) -> None:
    def gone() -> bool:
        members = pids_in_group(pgid)
        reap([p for p in members if is_zombie(p)])  # orphans adopted by this process
        return group_gone(pgid)

    wait_until(gone, timeout=10, what=f"process group {pgid} to end")


def test_kill_request_ends_a_process_group_with_grandchildren(
    engine_factory: Make, clock: FakeClock, db_path: Path, subreaper: None
) -> None:
    engine = engine_factory("""
        [[event]]
        name = "family"
        shell = "sleep 300 & sleep 300; wait"
    """)
    pgid = start_family(engine, clock, db_path, "family")
    assert os.getpgid(pgid) == pgid  # the run leads its own group
    insert_request(db_path, "kill", "family", requested_by="tester")
    tick_until(
        engine,
        lambda: runs(db_path, "family")[-1]["state"] == "killed",
        now=clock.now(),
        what="the run to be recorded killed",
    )
    assert "tester" in str(runs(db_path, "family")[-1]["reason"])
    assert_group_ends(pgid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_kill_escalates_to_sigkill_when_term_is_ignored(
    engine_factory: Make, clock: FakeClock, db_path: Path, subreaper: None
) -> None:
    engine = engine_factory("""
        [[event]]
        name = "stubborn"
        shell = "trap '' TERM; sleep 300 & sleep 300; wait"
    """)
    pgid = start_family(engine, clock, db_path, "stubborn")
    run_id = int(runs(db_path, "stubborn")[-1]["id"])
    assert engine.executors.kill(run_id, by="test", grace_s=0.5)
    tick_until(
        engine,
        lambda: runs(db_path, "stubborn")[-1]["state"] == "killed",
        now=clock.now(),
        what="the run to be recorded killed",
    )
    assert_group_ends(pgid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_works_handed_over_together_all_run_once_none_waiting_for_another() -> None:
    """Workers.submit_all wakes one idle thread; each thread that takes a work hands the rest
    on before it runs its own: a work that blocks (here the first, until all the others ran)
    holds up none of them, one that raises stops none, and each runs once."""
    from evman.engine.running.inprocess import Workers

    pool = Workers(4, "test-call")
    pool.prestart()
    ran: list[int] = []
    lock, others_done = threading.Lock(), threading.Event()

    def work(n: int) -> None:
        if n == 0:
            assert others_done.wait(10), "the other works waited behind the first"
        with lock:
            ran.append(n)
            if len(ran) == 9:
                others_done.set()
        if n == 5:
            raise RuntimeError("a failing work")  # logged by the worker, like any work's bug

    try:
        pool.submit_all([(work, (n,)) for n in range(10)])
        wait_until(lambda: len(ran) == 10, timeout=10, what="all ten works")
        assert sorted(ran) == list(range(10)) and ran[-1] == 0
    finally:
        pool.shutdown()
