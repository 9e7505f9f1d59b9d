"""Starting runs (child processes, callables, HTTP calls); how they end is heard by the reaper
(reaper.py) and handed to the engine as Outcomes (outcome.py)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
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
from evman.engine.running.outcome import Outcome, outcome_of
from evman.engine.running.procs import parent_pid
from evman.engine.running.reaper import Child, Reaper
from evman.engine.running.supervisor_client import Refused, SpawnRequest, Started, SupervisorGone, read_exit

_log = logging.getLogger("evman.executors")

KILL_GRACE_S: Final = 5.0


class SpawnError(RuntimeError):
    pass


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
        self._reaper = Reaper(clock, logs_dir, on_done)
        self.supervisor = self._reaper.supervisor
        self._batch: list[SpawnRequest] | None = None

    def expect_commands(self) -> None:
        """Commands are coming (their specs were read): start the supervisor now, not at the
        first command. It boots (a Python start, 30 ms of CPU, ~0.1 s on a busy machine) while
        the engine does its next ticks, instead of inside the tick that starts a burst. An
        engine that only runs callables never starts one."""
        if self.supervisor.fileno() is not None or self._reaper.stopping:
            return
        try:
            self.supervisor.ensure_started()
        except OSError as exc:  # said again, with the run, by the first command that needs it
            _log.warning("the command supervisor could not start yet: %s", exc)
            return
        self._reaper.watch_supervisor()

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
        children = self._reaper.children
        for request in batch:  # registered first: a quick command's end may come before its pid
            children[(request.run_id, request.phase)] = Child(request.run_id, request.phase, 0, None)
        try:
            self.supervisor.ensure_started()
            self._reaper.watch_supervisor()  # before asking: the reaper thread hears the answers
            answers: list[Started | Refused] = self.supervisor.spawn_many(batch)
        except (SupervisorGone, OSError) as exc:
            answers = [Refused("exec", 0, str(exc))] * len(batch)
        out: list[int | BaseException] = []
        with self._reaper.lock:
            for request, answer in zip(batch, answers, strict=True):
                key = (request.run_id, request.phase)
                child = children.get(key)
                if isinstance(answer, Started):
                    if child is not None:
                        child.pid, child.since_ns = answer.pid, answer.since_ns
                    out.append(answer.pid)
                else:
                    children.pop(key, None)
                    out.append(SpawnError(_refusal_message(request, answer)))
        return out

    def adopt(self, run_id: int, pid: int, *, log_path: str | None = None, phase: str = "main") -> bool:
        """Watch a process a previous engine started. When it ends, its outcome is the exit
        file its supervisor writes beside `log_path` (waited for while that supervisor
        lives), or unknown without one. False when the process is gone already."""
        return self._reaper.adopt(run_id, pid, phase, log_path, parent_pid(pid))

    # -- callables and HTTP ------------------------------------------------------------

    def _run_call(
        self, run_id: int, spec: EventSpec, log: LazyLog, attempt: int, scheduled_for: str, env: Mapping[str, str]
    ) -> None:
        code, error = run_callable(spec, run_id, log, attempt, scheduled_for, env)
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    def _run_http(self, run_id: int, spec: EventSpec, log: IO[bytes]) -> None:
        code, error = call_http(spec, log)
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    # -- killing -------------------------------------------------------------------------

    def kill(self, run_id: int, *, by: str, grace_s: float = KILL_GRACE_S) -> bool:
        """TERM the run's whole process group, then KILL it after `grace_s`. False if not ours."""
        children = self._reaper.of(run_id)
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
        return self._reaper.count()

    def shutdown(self, *, wait_s: float) -> list[int]:
        """Stop reaping after waiting up to `wait_s` for children; returns run ids still running."""
        deadline = self.clock_monotonic() + wait_s
        while self.running_count() and self.clock_monotonic() < deadline:
            threading.Event().wait(0.05)
        left = self._reaper.stop()
        self._pool.shutdown()
        self.supervisor.close()  # it keeps what runs, and writes their exit files
        return left

    @staticmethod
    def clock_monotonic() -> float:
        return time.monotonic()


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
