"""Starting one child process as subprocess.Popen does, without Popen's Python: the command
supervisor's start of a command (supervisor_process.py imports it; standard library only).

Popen's own work around its C core (`_posixsubprocess.fork_exec`, the vfork and exec that
let go of the GIL) was ~90 µs of the supervisor's CPU per command, and 8 threads of it
contended for the GIL (bench W2). `spawn` calls that core itself: the same child (vfork,
the cwd entered, stdin and the log dup'ed, every other fd closed, SIGPIPE and SIGXFSZ back to
their defaults, a session of its own, the user and group switched), the same errors (exec's
and chdir's, read from the error pipe the child writes before it would exec), with the
environment encoded once per batch instead of once per command. fork_exec is CPython's
private helper; its signature is the one of the Python versions named in FORK_EXEC_VERSIONS,
and any other version starts commands through Popen (`spawn_with_popen`), the same child."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import _posixsubprocess
except ImportError:  # not CPython on a POSIX system: Popen does it
    _posixsubprocess = None  # type: ignore[assignment]

FORK_EXEC_VERSIONS = ((3, 11), (3, 12), (3, 13))
"""The versions whose fork_exec takes the 23 arguments `spawn` passes (3.14 dropped allow_vfork)."""
FAST = {"on": _posixsubprocess is not None and sys.version_info[:2] in FORK_EXEC_VERSIONS}
"""Whether `spawn` calls fork_exec itself (off: Popen; a test turns it off to check both)."""

Child = tuple[int, Any]
"""A started command: its pid, and the Popen object when Popen started it (kept until it is
reaped, with its returncode set then: a Popen dropped unwaited would be waited for by the next)."""


class Environment:
    """The engine's environment, the base of every command's, encoded once (not per command),
    and where each program lies on a PATH (found once per batch of starts: otherwise each child
    tries every PATH folder before it, 8 failed execs here, ~25 µs of the spawning thread's wait)."""

    def __init__(self, base: dict[str, str]) -> None:
        self.base = base
        self.base_encoded = encode_env(base)
        self.found: dict[tuple[str, str], str | None] = {}
        """(program, PATH) -> its full path, or None; cleared for each batch."""

    def encoded(self, extra: dict[str, str]) -> list[bytes]:
        """A command's environment: the base and its own variables (which win over the base's)."""
        if not extra:
            return self.base_encoded
        if self.base.keys().isdisjoint(extra):
            return self.base_encoded + encode_env(extra)
        return encode_env({**self.base, **extra})

    def executables(self, program: str, extra: dict[str, str]) -> tuple[bytes, ...]:
        """Where exec looks for `program` on the command's PATH (exec_path)."""
        path = extra["PATH"] if "PATH" in extra else self.base.get("PATH", os.defpath)
        found = None
        if "/" not in program:  # a path is exec's own; a relative PATH folder (find_program: None) too
            key = (program, path)
            if key not in self.found:
                self.found[key] = find_program(program, path)
            found = self.found[key]
        return exec_path(program, found, path)


def encode_env(env: Mapping[str, str]) -> list[bytes]:
    """`env` as exec takes it (NAME=value bytes); ValueError for a name with '=' or a NUL anywhere."""
    out = []
    for name, value in env.items():
        key = os.fsencode(name)
        if b"=" in key:
            raise ValueError("illegal environment variable name")
        out.append(key + b"=" + os.fsencode(value))
    return out


def find_program(program: str, path: str) -> str | None:
    """The first executable regular file named `program` in the PATH folders `path`."""
    for folder in path.split(os.pathsep):
        if not folder.startswith("/"):
            return None
        candidate = os.path.join(folder, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def exec_path(program: str, found: str | None, path: str) -> tuple[bytes, ...]:
    """Where exec looks for `program`: where it was `found`, itself if it names a path, else
    each folder of `path` in turn (as subprocess does)."""
    if found is not None:
        return (os.fsencode(found),)
    if "/" in program:
        return (os.fsencode(program),)
    return tuple(os.path.join(os.fsencode(folder), os.fsencode(program)) for folder in path.split(os.pathsep))


def spawn(
    argv: Sequence[str],
    executables: tuple[bytes, ...],
    cwd: str,
    env: list[bytes],
    stdin: int,
    out: int,
    user: Sequence[int | None] = (None, None),
) -> Child:
    """Start `argv` (the first of `executables` that execs) in `cwd` with environment `env`,
    `stdin` as its fd 0 and `out` as its 1 and 2, in a new session, as `user` (uid, gid) if
    given. OSError as Popen raises it: a missing cwd has the cwd as its filename."""
    if not FAST["on"]:
        return spawn_with_popen(argv, executables, cwd, env, stdin, out, user)
    uid, gid = user
    errors_r, errors_w = os.pipe()
    try:
        try:
            pid = _posixsubprocess.fork_exec(
                argv, executables, True, (errors_w,), cwd, env,
                stdin, -1, -1, out, -1, out, errors_r, errors_w,
                True, True, -1, gid, None if uid is None else [], uid, -1, None, True,  # type: ignore[arg-type]
            )  # fmt: skip
        except TypeError:  # a fork_exec that takes other arguments (a Python not checked): Popen from now on
            FAST["on"] = False
            return spawn_with_popen(argv, executables, cwd, env, stdin, out, user)
        finally:
            os.close(errors_w)
        failed = os.read(errors_r, 50_000)
    finally:
        os.close(errors_r)
    if failed:  # the child wrote why before it would exec, and exited
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped by the supervisor's loop, which waits for any child
        raise exec_error(failed, cwd, argv[0])
    return pid, None


def exec_error(report: bytes, cwd: str, program: str) -> OSError:
    """The child's "OSError:<errno in hex>:<noexec if chdir failed>" as the OSError Popen raises."""
    kind, _, rest = report.partition(b":")
    number_hex, _, detail = rest.partition(b":")
    try:
        number = int(number_hex, 16)
    except ValueError:
        number = 0
    if kind != b"OSError" or not number:
        return OSError(0, f"could not start it: {report.decode(errors='replace')}")
    return OSError(number, os.strerror(number), cwd if detail == b"noexec" else program)


def spawn_with_popen(
    argv: Sequence[str],
    executables: tuple[bytes, ...],
    cwd: str,
    env: list[bytes],
    stdin: int,
    out: int,
    user: Sequence[int | None] = (None, None),
) -> Child:
    """`spawn` through Popen (whose vfork lets go of the GIL too): where fork_exec's signature is
    not known. Popen tries each PATH folder itself (from the environment's PATH)."""
    environment = dict(item.split(b"=", 1) for item in env)
    proc = subprocess.Popen(
        list(argv),
        executable=executables[0] if len(executables) == 1 else None,
        cwd=cwd,
        env=environment,  # bytes keys and values: Popen takes them
        stdin=stdin,
        stdout=out,
        stderr=out,
        start_new_session=True,
        user=user[0],
        group=user[1],
        extra_groups=[] if user[0] is not None else None,
    )
    return proc.pid, proc
