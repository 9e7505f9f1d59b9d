"""The supervisor's start of a command (engine/running/spawning.py), by fork_exec and by Popen:
the same child, the same errors. Real processes."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from evman.engine.running import spawning

SHOW = (
    'echo "cwd=$(pwd) var=$EVMAN_PROBE sid=$(cut -d" " -f6 /proc/$$/stat) pid=$$"; '
    "cat; "
    'exec grep -E "^(SigBlk|SigIgn)" /proc/self/status'  # what exec kept (the shell blocks signals to fork)
)


@pytest.fixture(params=["fork_exec", "popen"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "fork_exec" and not spawning.FAST["on"]:
        pytest.skip("this Python's fork_exec is not one spawning.py knows")
    monkeypatch.setitem(spawning.FAST, "on", request.param == "fork_exec")
    yield request.param


def _start(tmp_path: Path, argv: list[str], cwd: str, stdin: bytes | None = None) -> tuple[int, str]:
    """Start argv as the supervisor does (its output in a log), wait for it; (exit code, log)."""
    tmp_path.mkdir(exist_ok=True)
    log = tmp_path / "out.log"
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    feed_r, feed_w = os.pipe()
    env = spawning.encode_env({"PATH": os.environ["PATH"], "EVMAN_PROBE": "probe value"})
    path = os.environ["PATH"]
    try:
        pid, proc = spawning.spawn(argv, spawning.exec_path(argv[0], None, path), cwd, env, feed_r, out)
    finally:
        os.close(feed_r)
        os.close(out)
    os.write(feed_w, stdin or b"")
    os.close(feed_w)
    _, status = os.waitpid(pid, 0)
    if proc is not None:
        proc.returncode = os.waitstatus_to_exitcode(status)
    return os.waitstatus_to_exitcode(status), log.read_text()


def test_the_child_has_its_cwd_env_session_stdin_and_only_its_three_fds(way: str, tmp_path: Path) -> None:
    code, out = _start(tmp_path, ["sh", "-c", SHOW], str(tmp_path), b"fed on stdin\n")
    first, fed, blocked, ignored = out.splitlines()
    pid = int(first.rsplit("pid=", 1)[1])
    assert (code, first) == (0, f"cwd={tmp_path} var=probe value sid={pid} pid={pid}")  # a session of its own
    assert ignored.split() == ["SigIgn:", "0000000000000000"]  # SIGPIPE and SIGXFSZ back to their defaults
    mask = sum(1 << (sig - 1) for sig in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert int(blocked.split()[1], 16) == mask  # the caller's own (none blocked in the supervisor's threads)
    assert fed == "fed on stdin"
    inheritable = os.open(os.devnull, os.O_RDONLY)  # as the supervisor's socket is (passed to it)
    os.set_inheritable(inheritable, True)
    try:
        _, fds = _start(tmp_path / "fds", ["ls", "/proc/self/fd"], str(tmp_path))
    finally:
        os.close(inheritable)
    assert fds.split() == ["0", "1", "2", "3"]  # (3: ls reading the folder) none of the caller's


def test_a_missing_cwd_is_an_oserror_naming_the_cwd(way: str, tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    with pytest.raises(OSError) as raised:
        _start(tmp_path, ["true"], gone)
    assert (raised.value.errno, raised.value.filename) == (errno.ENOENT, gone)


def test_a_missing_program_is_enoent_naming_the_program(way: str, tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        _start(tmp_path, ["no-such-program-evman"], str(tmp_path))
    assert raised.value.errno == errno.ENOENT
    assert raised.value.filename != str(tmp_path)


def test_a_program_that_is_not_executable_is_eacces(way: str, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(PermissionError):
        _start(tmp_path, [str(script)], str(tmp_path))


def test_a_name_with_an_equals_sign_or_a_nul_anywhere_is_a_valueerror(way: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        spawning.encode_env({"A=B": "c"})
    for argv, env in ((["true"], {"A": "b\0c"}), (["tr\0ue"], {})):
        with pytest.raises(ValueError):
            spawning.spawn(argv, (b"/bin/true",), str(tmp_path), spawning.encode_env(env), 0, 1)


def test_exec_path_prefers_what_was_found_then_a_path_then_each_folder() -> None:
    assert spawning.exec_path("tool", "/opt/bin/tool", "/a:/b") == (b"/opt/bin/tool",)
    assert spawning.exec_path("./tool", None, "/a:/b") == (b"./tool",)
    assert spawning.exec_path("tool", None, "/a:rel") == (b"/a/tool", b"rel/tool")


def test_the_supervisors_signal_handlers_do_not_reach_the_child(way: str, tmp_path: Path) -> None:
    before = signal.signal(signal.SIGHUP, lambda _s, _f: None)  # as the supervisor handles it
    try:
        code, out = _start(tmp_path, ["sh", "-c", 'grep "^SigCgt" /proc/$$/status'], str(tmp_path))
    finally:
        signal.signal(signal.SIGHUP, before)
    caught = int(out.split()[1], 16)
    assert code == 0 and not caught & (1 << (signal.SIGHUP - 1))


def test_a_fork_exec_that_takes_other_arguments_falls_back_to_popen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def other_signature(*args: object) -> int:
        raise TypeError(f"fork_exec() takes 22 positional arguments but {len(args)} were given")

    monkeypatch.setitem(spawning.FAST, "on", True)
    import _posixsubprocess  # what spawning calls

    monkeypatch.setattr(_posixsubprocess, "fork_exec", other_signature)
    code, out = _start(tmp_path, ["sh", "-c", "echo started"], str(tmp_path))
    assert (code, out, spawning.FAST["on"]) == (0, "started\n", False)
