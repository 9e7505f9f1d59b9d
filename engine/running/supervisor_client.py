"""The engine's side of the command supervisor (engine/running/supervisor_process.py): starting it, asking it
to start and kill commands, hearing how they ended, and reading the exit records it leaves
beside the logs for an engine that was not there to hear."""

from __future__ import annotations

import errno
import functools
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SUPERVISOR: Final = str(Path(__file__).resolve().parent / "supervisor_process.py")
START_TIMEOUT_S: Final = 30.0
"""How long a batch of starts may wait for the supervisor's answers (500 take ~0.2 s)."""

Key = tuple[int, str]
"""(run id, phase): what a command is to the engine."""


def exit_path(log_path: str, phase: str = "main") -> str:
    """Where the supervisor writes how the command of `phase` ended when the log's file
    system has no extended attributes: `<log>.exit`, `<log>.prepare.exit`."""
    return f"{log_path}.exit" if phase == "main" else f"{log_path}.{phase}.exit"


def exit_attribute(phase: str = "main") -> str:
    """The log's extended attribute that holds how the command of `phase` ended."""
    return "user.evman.exit" if phase == "main" else f"user.evman.{phase}.exit"


@dataclass(frozen=True)
class ExitRecord:
    """How a supervised command ended, as the supervisor saw it (times: Unix seconds)."""

    run_id: int
    phase: str
    pid: int
    exit_code: int
    """Negative: the signal that ended it (as subprocess says)."""
    signal: str | None
    started_at: float
    ended_at: float
    since_ns: int | None
    """The run's log mtime stamped just before the spawn: `fresh` compares with it."""
    utime_s: float
    stime_s: float
    maxrss_kb: int
    supervisor: int | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitRecord:
        return cls(
            int(data["run_id"]),
            str(data["phase"]),
            int(data["pid"]),
            int(data["exit_code"]),
            data.get("signal"),
            float(data["started_at"]),
            float(data["ended_at"]),
            data.get("since_ns"),
            float(data.get("utime_s", 0.0)),
            float(data.get("stime_s", 0.0)),
            int(data.get("maxrss_kb", 0)),
            data.get("supervisor"),
        )


def read_exit(log_path: str | None, phase: str = "main") -> ExitRecord | None:
    """The exit record beside a run's log, or None (not ended, never supervised, unreadable)."""
    if not log_path:
        return None
    try:
        return _parse(os.getxattr(log_path, exit_attribute(phase)))
    except OSError:
        pass  # not set (not ended), or no extended attributes here: the file then
    try:
        with open(exit_path(log_path, phase), "rb") as fh:
            return _parse(fh.read())
    except OSError:
        return None


def _parse(data: bytes) -> ExitRecord | None:
    try:
        return ExitRecord.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class SpawnRequest:
    run_id: int
    phase: str
    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str]
    """Added to the engine's environment."""
    log: str
    stdin: str | None = None
    header: str | None = None
    """Written to the log before the command starts."""
    user: tuple[int, int] | None = None

    def message(self) -> dict[str, Any]:
        return {
            "op": "spawn",
            "key": [self.run_id, self.phase],
            "argv": list(self.argv),
            "cwd": self.cwd,
            "env": dict(self.env),
            "log": self.log,
            "stdin": self.stdin,
            "header": self.header,
            "user": list(self.user) if self.user else None,
        }


@dataclass(frozen=True)
class Started:
    pid: int
    since_ns: int


@dataclass(frozen=True)
class Refused:
    what: str
    """"cwd", "exec", "log" or "stopping"."""
    errno: int
    error: str


class SupervisorGone(RuntimeError):
    pass


class SupervisorClient:
    """One supervisor process, started at the first command. `on_exit(record)` runs in the
    thread that calls `readable()` (the executors' reaper); `on_gone(keys)` too, with the
    commands whose end will not be heard because the supervisor died."""

    def __init__(
        self, logs_dir: Path, on_exit: Callable[[ExitRecord], None], on_gone: Callable[[dict[Key, int]], None]
    ) -> None:
        self.logs_dir = logs_dir
        self.on_exit = on_exit
        self.on_gone = on_gone
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: dict[Key, Started | Refused] = {}
        self._waiting: set[Key] = set()
        self._running: dict[Key, int] = {}
        self._env_sent: dict[str, str] | None = None
        self._pending = b""

    # -- the process -------------------------------------------------------------------

    def ensure_started(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # its own session: a signal to the engine's process group (a terminal's ^C, a
            # service manager's stop of the main process) leaves it and its commands running.
            # Nothing is created for it: its complaints go to <logs>/supervisor.stderr, made
            # at the first one
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    SUPERVISOR,
                    str(theirs.fileno()),
                    str(self.logs_dir / "supervisor.stderr"),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
        finally:
            theirs.close()
        self._sock = ours
        self._env_sent = None
        return ours

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def fileno(self) -> int | None:
        return self._sock.fileno() if self._sock is not None else None

    # -- asking --------------------------------------------------------------------------

    def spawn_many(self, requests: Sequence[SpawnRequest]) -> list[Started | Refused]:
        """Start every request (in order, by one process) and wait for the answers."""
        return self.ask(requests)()

    def ask(self, requests: Sequence[SpawnRequest]) -> Callable[[], list[Started | Refused]]:
        """Send the requests now; what it returns waits for their answers (SupervisorGone)."""
        keys = [(r.run_id, r.phase) for r in requests]
        lines = [self._env_line()] + [_line(r.message()) for r in requests]
        with self._lock:
            self._waiting.update(keys)
        self._send(b"".join(line for line in lines if line))
        return functools.partial(self._answers_to, keys)

    def _answers_to(self, keys: list[Key]) -> list[Started | Refused]:
        with self._answered:
            if not self._answered.wait_for(lambda: all(k in self._answers for k in keys), timeout=START_TIMEOUT_S):
                self._waiting.difference_update(keys)
                raise SupervisorGone(f"the command supervisor did not answer in {START_TIMEOUT_S:.0f} s")
            answers = [self._answers.pop(k) for k in keys]
            self._waiting.difference_update(keys)
        return answers

    def kill(self, pid: int, grace_s: float) -> None:
        self._send(_line({"op": "kill", "pid": pid, "grace": grace_s}))

    def make_dirs(self, folders: Sequence[str]) -> None:
        """Have the supervisor make these log folders now (ahead of their commands)."""
        self._send(_line({"op": "dirs", "dirs": list(folders)}))

    def is_running(self, key: Key) -> bool:
        with self._lock:
            return key in self._running

    def _env_line(self) -> bytes:
        env = dict(os.environ)
        if env == self._env_sent:
            return b""
        self._env_sent = env
        return _line({"op": "env", "env": env})

    def _send(self, data: bytes) -> None:
        sock = self.ensure_started()
        try:
            sock.sendall(data)
        except OSError as exc:
            self._gone()
            raise SupervisorGone(f"the command supervisor is gone: {exc}") from exc

    # -- hearing -------------------------------------------------------------------------

    def readable(self) -> bool:
        """Read what the supervisor said; False once it is gone (its socket closed)."""
        sock = self._sock
        if sock is None:  # closed meanwhile (the engine's shutdown)
            return False
        try:
            data = sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._gone()
            return False
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        exits = []
        with self._answered:
            for line in lines:
                msg = json.loads(line)
                key: Key = (int(msg["key"][0]), str(msg["key"][1]))
                op = msg["op"]
                if op == "started":
                    self._running[key] = int(msg["pid"])
                    self._answers[key] = Started(int(msg["pid"]), int(msg["since_ns"]))
                elif op == "refused":
                    self._answers[key] = Refused(msg["what"], int(msg["errno"]), str(msg["error"]))
                elif op == "exit":
                    self._running.pop(key, None)
                    exits.append(ExitRecord.from_json(msg))
            self._answered.notify_all()
        for record in exits:
            self.on_exit(record)
        return True

    def _gone(self) -> None:
        """The supervisor died (or was closed): its running commands' ends will not be heard."""
        with self._answered:
            sock, self._sock = self._sock, None
            running, self._running = self._running, {}
            for key in self._waiting:
                self._answers.setdefault(key, Refused("exec", 0, "the command supervisor died"))
            self._answered.notify_all()
        if sock is not None:
            sock.close()
        self._reap_process()
        if running:
            self.on_gone(running)

    def _reap_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # it keeps its commands and ends with the last; subprocess reaps it then
            threading.Thread(target=proc.wait, daemon=True, name="evman-supervisor-wait").start()

    def close(self) -> None:
        """Let go: the supervisor keeps its commands, writes their exit files, and ends."""
        with self._lock:
            sock, self._sock = self._sock, None
            self._running.clear()
        if sock is not None:
            sock.close()
        self._reap_process()


def refusal_message(request: SpawnRequest, refused: Refused) -> str:
    """What a refused start says to the operator: the cause, and what to do."""
    name = request.argv[0]
    if refused.what == "cwd" and refused.errno == errno.ENOENT:
        return (
            f"working directory {request.cwd} does not exist. Create it, or fix the event's cwd "
            f"and load the definitions again."
        )
    if refused.what == "cwd":
        return f"cannot enter working directory {request.cwd}: {refused.error}"
    if refused.what == "log":
        return f"cannot open its log {request.log}: {refused.error}"
    if refused.errno == errno.ENOENT:
        return f"command not found: {name!r} (looked in PATH). Check the event's run."
    if refused.errno == errno.EACCES:
        return f"permission denied running {name!r}: {refused.error}. Is it executable?"
    return f"could not start {name!r}: {refused.error}"


def _line(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


__all__ = [
    "ExitRecord",
    "Refused",
    "SpawnRequest",
    "Started",
    "SupervisorClient",
    "SupervisorGone",
    "exit_attribute",
    "exit_path",
    "read_exit",
    "refusal_message",
]
