"""Starting runs (child processes, callables, HTTP calls) and reaping them into Outcomes."""

from __future__ import annotations

import errno
import functools
import logging
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from evman.engine.clock import Clock
from evman.engine.model import EventSpec
from evman.engine.running.inprocess import (
    TAIL_BYTES,
    LazyLog,
    RunContext,
    Workers,
    call_http,
    resolve_callable,
    run_callable,
)
from evman.engine.running.procs import parent_pid, pid_alive
from evman.engine.running.supervisor_client import (
    ExitRecord,
    Refused,
    SpawnRequest,
    Started,
    SupervisorClient,
    SupervisorGone,
    read_exit,
)

_log = logging.getLogger("evman.executors")

KILL_GRACE_S: Final = 5.0
EXIT_FILE_WAIT_S: Final = 5.0
"""How long an adopted command's end waits for its (live) supervisor's exit file."""


@dataclass(frozen=True)
class Outcome:
    """How a run (or its `prepare` step) ended."""

    run_id: int
    phase: str
    """"main" or "prepare"."""
    exit_code: int | None
    ended_at: datetime
    error: str | None = None
    """Why it could not run or crashed, in words; None when it ran to an exit code."""
    killed_by: str | None = None
    """Who or what killed it (operator, runtime max), or None."""
    since_ns: int | None = None
    """A command's log mtime stamped just before it started: the file system's own clock,
    which `fresh` output checks compare with (verify_outputs(since_ns=...))."""
    record: ExitRecord | None = None
    """What its supervisor wrote in the exit file (resource use, real start and end)."""


class SpawnError(RuntimeError):
    pass


@dataclass
class _Child:
    run_id: int
    phase: str
    pid: int
    pidfd: int | None
    """Watched for its end: a process adopted from a previous engine. None for a command of
    our supervisor, which tells us how it ended."""
    log_path: str | None = None
    """An adopted command's log: its supervisor's exit file lies beside it."""
    writer: int | None = None
    """An adopted command's supervisor (its parent when adopted), which writes the exit file."""
    killed_by: str | None = None
    since_ns: int | None = None


class _Ticket(int):
    """What `start` returns inside `start_all`: a place in the batch, sent at its end."""


class Executors:
    """Owns every child process, worker thread and log file of a running engine."""

    def __init__(self, clock: Clock, logs_dir: Path, on_done: Callable[[Outcome], None], workers: int = 16) -> None:
        self.clock = clock
        self.logs_dir = logs_dir
        self._logs_text = str(logs_dir.absolute())
        self.on_done = on_done
        self._pool = Workers(workers, "evman-call")
        self._children: dict[tuple[int, str], _Child] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.supervisor = SupervisorClient(logs_dir.absolute(), self._exited, self._supervisor_gone)
        self._watched_sock: int | None = None
        self._batch: list[SpawnRequest] | None = None
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap_loop, name="evman-reaper", daemon=True)
        self._reaper.start()

    def expect_commands(self) -> None:
        """Commands are coming (their specs were read): start the supervisor now, not at the
        first command. It boots (a Python start, 30 ms of CPU, ~0.1 s on a busy machine) while
        the engine does its next ticks, instead of inside the tick that starts a burst. An
        engine that only runs callables never starts one."""
        if self.supervisor.fileno() is not None or self._stopping:
            return
        try:
            self.supervisor.ensure_started()
        except OSError as exc:  # said again, with the run, by the first command that needs it
            _log.warning("the command supervisor could not start yet: %s", exc)
            return
        self._watch_supervisor()

    # -- logs --------------------------------------------------------------------

    def log_path(self, event: str, run_id: int) -> Path:
        return self.logs_dir / event / f"{run_id}.log"

    def log_path_text(self, event: str, run_id: int) -> str:
        """str(log_path(...)), without building Paths: the engine asks for every new run."""
        return os.path.join(self._logs_text, event, f"{run_id}.log")

    def _open_log(self, event: str, run_id: int) -> IO[bytes]:
        path = self.log_path(event, run_id)
        # each level made 0700 itself: mkdir(parents=True) would make <db>.logs with the
        # umask's mode (0777 under umask 0), and others could plant an event folder there
        self.logs_dir.mkdir(exist_ok=True, mode=0o700)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab", buffering=0)

    # -- starting ------------------------------------------------------------------

    def start(
        self, run_id: int, spec: EventSpec, env_extra: Mapping[str, str], attempt: int, scheduled_for: str
    ) -> int | None:
        """Start the run; returns the child's pid (None for callables and HTTP). Raises SpawnError."""
        if spec.run is not None:
            return self._spawn(run_id, "main", list(spec.run), spec, env_extra, stdin=spec.stdin)
        if spec.shell is not None:
            return self._spawn(run_id, "main", ["/bin/sh", "-c", spec.shell], spec, env_extra, stdin=spec.stdin)
        if spec.call is not None:
            ctx_env = {**spec.env, **env_extra}
            log = LazyLog(functools.partial(self._open_log, spec.name, run_id))
            self._pool.submit(self._run_call, run_id, spec, log, attempt, scheduled_for, ctx_env)
        else:
            self._pool.submit(self._with_log, self._run_http, run_id, spec)
        return None

    def _with_log(self, work: Callable[..., None], run_id: int, spec: EventSpec, *args: Any) -> None:
        """Open the run's log in the worker thread, then do the work: creating the log's folder
        and file is syscalls the engine's tick need not wait for."""
        try:
            log = self._open_log(spec.name, run_id)
        except OSError as exc:
            self.on_done(
                Outcome(
                    run_id,
                    "main",
                    None,
                    self.clock.now(),
                    f"cannot open its log {self.log_path(spec.name, run_id)}: {exc.strerror or exc}",
                )
            )
            return
        work(run_id, spec, log, *args)

    def start_all(self, starts: list[Callable[[], int | None]]) -> list[int | None | BaseException]:
        """Call each of `starts`; its pid (or None), or what it raised.

        The commands among them go to the supervisor in one message and start one after
        the other there (posix_spawn: ~0.2 ms each, while this thread waits idle)."""
        self._batch = []
        try:
            results = [self.attempt(start) for start in starts]
            batch = self._batch
        finally:
            self._batch = None
        if not batch:
            return results
        answers = self._send_spawns(batch)
        return [answers[r] if isinstance(r, _Ticket) else r for r in results]

    @staticmethod
    def attempt(start: Callable[[], int | None]) -> int | None | BaseException:
        try:
            return start()
        except Exception as exc:  # handed back to the engine thread, which decides
            return exc

    def prepare(self, run_id: int, command: str, spec: EventSpec, env_extra: Mapping[str, str]) -> int:
        return self._spawn(run_id, "prepare", ["/bin/sh", "-c", command], spec, env_extra, stdin=None)

    def _spawn(
        self,
        run_id: int,
        phase: str,
        argv: list[str],
        spec: EventSpec,
        env_extra: Mapping[str, str],
        *,
        stdin: str | None,
    ) -> int:
        request = SpawnRequest(
            run_id,
            phase,
            argv,
            spec.cwd,
            {**spec.env, **env_extra},
            self.log_path_text(spec.name, run_id),
            stdin,
            f"--- prepare: {argv[-1]}\n" if phase == "prepare" else None,
            _user_ids(spec.user),
        )
        if self._batch is not None:
            self._batch.append(request)
            return _Ticket(len(self._batch) - 1)
        result = self._send_spawns([request])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _send_spawns(self, batch: list[SpawnRequest]) -> list[int | BaseException]:
        """Start `batch` through the supervisor: a pid, or the SpawnError, for each."""
        for request in batch:  # registered first: a quick command's end may come before its pid
            self._children[(request.run_id, request.phase)] = _Child(request.run_id, request.phase, 0, None)
        try:
            self.supervisor.ensure_started()
            self._watch_supervisor()  # before asking: the reaper thread hears the answers
            answers: list[Started | Refused] = self.supervisor.spawn_many(batch)
        except (SupervisorGone, OSError) as exc:
            answers = [Refused("exec", 0, str(exc))] * len(batch)
        out: list[int | BaseException] = []
        with self._lock:
            for request, answer in zip(batch, answers, strict=True):
                key = (request.run_id, request.phase)
                child = self._children.get(key)
                if isinstance(answer, Started):
                    if child is not None:
                        child.pid, child.since_ns = answer.pid, answer.since_ns
                    out.append(answer.pid)
                else:
                    self._children.pop(key, None)
                    out.append(SpawnError(_refusal_message(request, answer)))
        return out

    def _watch_supervisor(self) -> None:
        fd = self.supervisor.fileno()
        if fd is None or fd == self._watched_sock:
            return
        with self._lock:
            self._selector.register(fd, selectors.EVENT_READ, self.supervisor)
            self._watched_sock = fd
        os.write(self._wake_w, b"x")

    def _exited(self, record: ExitRecord) -> None:
        """The supervisor says a command ended (in the reaper thread)."""
        with self._lock:
            child = self._children.pop((record.run_id, record.phase), None)
        killed_by = child.killed_by if child is not None else None
        self.on_done(outcome_of(record, self.clock.now(), killed_by))

    def _supervisor_gone(self, running: dict[tuple[int, str], int]) -> None:
        """The supervisor died under its commands: watch them to their end, whose status is
        lost with it (in the reaper thread)."""
        with self._lock:
            if self._watched_sock is not None:
                self._selector.unregister(self._watched_sock)
                self._watched_sock = None
        for (run_id, phase), pid in running.items():
            with self._lock:
                self._children.pop((run_id, phase), None)
            if not self._watch_pid(run_id, phase, pid, None, None):
                self.on_done(Outcome(run_id, phase, None, self.clock.now(), "exit status unknown: its supervisor died"))

    def adopt(self, run_id: int, pid: int, *, log_path: str | None = None, phase: str = "main") -> bool:
        """Watch a process a previous engine started. When it ends, its outcome is the exit
        file its supervisor writes beside `log_path` (waited for while that supervisor
        lives), or unknown without one. False when the process is gone already."""
        writer = parent_pid(pid)
        return self._watch_pid(run_id, phase, pid, log_path, writer)

    def _watch_pid(self, run_id: int, phase: str, pid: int, log_path: str | None, writer: int | None) -> bool:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        child = _Child(run_id, phase, pid, pidfd, log_path, writer)
        with self._lock:
            self._children[(run_id, phase)] = child
            self._selector.register(pidfd, selectors.EVENT_READ, child)
        os.write(self._wake_w, b"x")
        return True

    # -- callables and HTTP ------------------------------------------------------------

    def _run_call(
        self, run_id: int, spec: EventSpec, log: LazyLog, attempt: int, scheduled_for: str, env: Mapping[str, str]
    ) -> None:
        code, error = run_callable(spec, run_id, log, attempt, scheduled_for, env)
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    def _run_http(self, run_id: int, spec: EventSpec, log: IO[bytes]) -> None:
        code, error = call_http(spec, log)
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    # -- reaping -----------------------------------------------------------------------

    def _reap_loop(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    os.read(self._wake_r, 4096)
                elif key.data is self.supervisor:
                    if not self.supervisor.readable():
                        self._unwatch_supervisor(key.fd)
                else:
                    self._reap_adopted(key.data)

    def _unwatch_supervisor(self, fd: int) -> None:
        with self._lock:
            if self._watched_sock == fd:
                self._selector.unregister(fd)
                self._watched_sock = None

    def _reap_adopted(self, child: _Child) -> None:
        assert child.pidfd is not None
        with self._lock:
            self._selector.unregister(child.pidfd)
            self._children.pop((child.run_id, child.phase), None)
        os.close(child.pidfd)
        record = _await_exit_record(child)
        if record is not None:
            self.on_done(outcome_of(record, self.clock.now(), child.killed_by))
            return
        self.on_done(
            Outcome(
                child.run_id,
                child.phase,
                None,
                self.clock.now(),
                "exit status unknown: it ended while no engine was its parent",
                child.killed_by,
            )
        )

    # -- killing -------------------------------------------------------------------------

    def kill(self, run_id: int, *, by: str, grace_s: float = KILL_GRACE_S) -> bool:
        """TERM the run's whole process group, then KILL it after `grace_s`. False if not ours."""
        with self._lock:
            children = [c for (rid, _), c in self._children.items() if rid == run_id and c.pid]
        for child in children:
            child.killed_by = by
            if child.pidfd is None:  # our supervisor's: it signals, and escalates, even if we die
                try:
                    self.supervisor.kill(child.pid, grace_s)
                    continue
                except SupervisorGone:
                    pass
            _signal_group(child.pid, signal.SIGTERM)
            timer = threading.Timer(grace_s, _signal_group, (child.pid, signal.SIGKILL))
            timer.daemon = True
            timer.start()
        return bool(children)

    def running_count(self) -> int:
        with self._lock:
            return len(self._children)

    def shutdown(self, *, wait_s: float) -> list[int]:
        """Stop reaping after waiting up to `wait_s` for children; returns run ids still running."""
        deadline = self.clock_monotonic() + wait_s
        while self.running_count() and self.clock_monotonic() < deadline:
            threading.Event().wait(0.05)
        with self._lock:
            left = sorted({rid for rid, _ in self._children})
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._reaper.join(timeout=2)
        self._pool.shutdown()
        self.supervisor.close()  # it keeps what runs, and writes their exit files
        return left

    @staticmethod
    def clock_monotonic() -> float:
        return time.monotonic()


def _await_exit_record(child: _Child) -> ExitRecord | None:
    """The exit file of an adopted command that just ended: its supervisor writes it just
    after reaping it, so wait while that supervisor lives (briefly; it is rare)."""
    if child.log_path is None:
        return None
    deadline = time.monotonic() + EXIT_FILE_WAIT_S
    while True:
        record = read_exit(child.log_path, child.phase)
        if record is not None and record.pid == child.pid:
            return record
        if child.writer is None or not pid_alive(child.writer) or time.monotonic() > deadline:
            return None
        time.sleep(0.002)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def read_tail(path: str | Path | None, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a run's log, decoded leniently."""
    if not path:
        return ""
    try:
        if os.stat(path).st_size == 0:  # the common case for callables: no need to open it
            return ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _user_ids(user: str | None) -> tuple[int, int] | None:
    if user is None:
        return None
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _refusal_message(request: SpawnRequest, refused: Refused) -> str:
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


def outcome_of(record: ExitRecord, now: datetime, killed_by: str | None = None) -> Outcome:
    """The Outcome a supervisor's exit record stands for (ended `now`, by the engine's clock)."""
    code = record.exit_code
    error = f"ended by signal {record.signal or -code}" if code < 0 else None
    return Outcome(record.run_id, record.phase, code, now, error, killed_by, record.since_ns, record)


def run_env(event: str, run_id: int, attempt: int, scheduled_for: str | None) -> dict[str, str]:
    return {
        "EVMAN_EVENT": event,
        "EVMAN_RUN_ID": str(run_id),
        "EVMAN_ATTEMPT": str(attempt),
        "EVMAN_SCHEDULED_FOR": scheduled_for or "",
    }


__all__ = [
    "Executors",
    "Outcome",
    "RunContext",
    "SpawnError",
    "outcome_of",
    "read_exit",
    "read_tail",
    "resolve_callable",
    "run_env",
]
