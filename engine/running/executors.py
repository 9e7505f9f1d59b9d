"""Starting runs (child processes, callables, HTTP calls); how they end is heard by the reaper
(reaper.py) and handed to the engine as Outcomes (outcome.py)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from evman.engine.clock import Clock
from evman.engine.model import EventSpec
from evman.engine.running.environment import run_env
from evman.engine.running.inprocess import (
    HttpRun,
    LazyLog,
    RunContext,
    Workers,
    call_http,
    resolve_callable,
    run_callable,
)
from evman.engine.running.logfiles import log_path, open_log, read_tail
from evman.engine.running.outcome import Outcome, outcome_of
from evman.engine.running.procs import parent_pid, signal_group
from evman.engine.running.reaper import Child, Reaper
from evman.engine.running.run_as import SpawnError, user_ids
from evman.engine.running.supervisor_client import (
    Refused,
    SpawnRequest,
    Started,
    SupervisorGone,
    read_exit,
    refusal_message,
)

_log = logging.getLogger("evman.executors")

KILL_GRACE_S: Final = 5.0


class _Ticket(int):
    """What `start` returns inside `start_all`: a place in the batch, sent at its end."""


class _Handed(int):
    """What `start` returns for a callable or an HTTP call inside `start_all`: its place among
    the calls handed to the workers together at its end."""


class Executors:
    """Owns every child process, worker thread and log file of a running engine."""

    def __init__(
        self,
        clock: Clock,
        logs_dir: Path,
        on_done: Callable[[Outcome], None],
        workers: int = 16,
        host: str | None = None,
    ) -> None:
        self.clock = clock
        self.host = host or socket.gethostname()
        """This machine, as the engine names it (in the reasons of runs it cannot start here)."""
        self.logs_dir = logs_dir
        self._logs_text = str(logs_dir.absolute())
        self.on_done = on_done
        self._pool = Workers(workers, "evman-call")
        self._reaper = Reaper(clock, logs_dir, on_done)
        self.supervisor = self._reaper.supervisor
        self._batch: list[SpawnRequest] | None = None
        self._calls: list[tuple[Callable[..., None], tuple[Any, ...]]] | None = None

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

    def prepare_logs(self, events: list[str], due: datetime | None = None) -> None:
        """Commands of these events fall due at `due` (default: now): their supervisor makes
        their log folders (that day's) now, while the engine waits, not in the burst of spawns
        (see make_dirs there)."""
        if not events or self._reaper.stopping or self.supervisor.fileno() is None:
            return
        try:
            day = max(due, self.clock.now()) if due is not None else self.clock.now()
            self.supervisor.make_dirs([os.path.dirname(log_path(self._logs_text, e, 0, day)) for e in events])
        except SupervisorGone:
            pass  # the commands find out, and say so

    def expect_calls(self) -> None:
        """Callables or HTTP calls are coming (their specs were read): start the worker
        threads now, not one by one in the tick that starts a burst of them."""
        if not self._reaper.stopping:
            self._pool.prestart()

    # -- logs --------------------------------------------------------------------

    def log_path_text(self, event: str, run_id: int, day: datetime) -> str:
        """A run's log under this engine's root (logfiles.log_path), in `day`'s folder."""
        return log_path(self._logs_text, event, run_id, day)

    def log_for(self, event: str, run_id: int, recorded: str | None, now: datetime) -> str:
        """The log a run started here writes: the one recorded for it when it lies under this
        engine's root (its prepare step chose it, or an earlier start here), else a new one in
        today's folder: a run writes only into the folder of a day that has not ended long ago."""
        if recorded and recorded.startswith(self._logs_text + os.sep):
            return recorded
        return self.log_path_text(event, run_id, now)

    # -- starting ------------------------------------------------------------------

    def start(
        self,
        run_id: int,
        spec: EventSpec,
        env_extra: Mapping[str, str],
        attempt: int,
        scheduled_for: str,
        log: str,
        params: Mapping[str, str] | None = None,
    ) -> int | None:
        """Start the run, its output going to `log` (the path recorded as the run's); returns the
        child's pid (None for callables and HTTP). Raises SpawnError. `params`: its run parameters
        (a command finds them in env_extra as EVMAN_PARAM_*)."""
        if spec.run is not None:
            return self._spawn(run_id, "main", list(spec.run), spec, env_extra, log, stdin=spec.stdin)
        if spec.shell is not None:
            return self._spawn(run_id, "main", ["/bin/sh", "-c", spec.shell], spec, env_extra, log, stdin=spec.stdin)
        if spec.call is not None:
            work, args = self.call_work(run_id, spec, env_extra, attempt, scheduled_for, log, params)
            return self._hand_over(work, *args)
        facts = HttpRun(spec.name, run_id, attempt, scheduled_for, dict(params or {}))
        return self._hand_over(self._with_log, self._run_http, run_id, spec, log, facts)

    def call_work(
        self,
        run_id: int,
        spec: EventSpec,
        env_extra: Mapping[str, str],
        attempt: int,
        scheduled_for: str,
        log: str,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """What a worker thread does to run a `call` event's callable (as `start` would): for
        start_calls, which hands many over at once."""
        lazy = LazyLog(functools.partial(open_log, log))
        env = {**spec.env, **env_extra}
        return self._finish, (run_id, run_callable, spec, run_id, lazy, attempt, scheduled_for, env, params)

    def start_calls(self, works: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> BaseException | None:
        """Hand these callables (call_work) to the worker threads together, waking one (see
        start_all); None, or why none could be."""
        got = self.attempt(functools.partial(self._pool.submit_all, works))
        return got if isinstance(got, BaseException) else None

    def _hand_over(self, work: Callable[..., None], *args: Any) -> int | None:
        """Give the work to a worker thread now, or (inside start_all) at its end."""
        if self._calls is None:
            self._pool.submit(work, *args)
            return None
        self._calls.append((work, args))
        return _Handed(len(self._calls) - 1)

    def _with_log(self, work: Callable[..., None], run_id: int, spec: EventSpec, path: str, *args: Any) -> None:
        """Open the run's log in the worker thread, then do the work: creating the log's folder
        and file is syscalls the engine's tick need not wait for."""
        try:
            log = open_log(path)
        except OSError as exc:
            why = f"cannot open its log {path}: {exc.strerror or exc}"
            self.on_done(Outcome(run_id, "main", None, self.clock.now(), why))
            return
        work(run_id, spec, log, *args)

    def start_all(self, starts: list[Callable[[], int | None]]) -> list[int | None | BaseException]:
        """Call each of `starts`; its pid (or None), or what it raised (start_all_later, waited for)."""
        return self.start_all_later(starts)()

    def start_all_later(self, starts: list[Callable[[], int | None]]) -> Callable[[], list[int | None | BaseException]]:
        """Call each of `starts` now; what it returns waits for the supervisor's answers and
        gives each one's pid (or None), or what it raised.

        The commands among them go to the supervisor in one message and start there (8 at a
        time, ~0.25 ms each) while this thread goes on: a burst's next part is written
        meanwhile (stages/flush.py); then the callables and HTTP calls go to the workers
        together, once all are ready, waking one worker thread (Workers.submit_all)."""
        self._batch, self._calls = [], []
        try:
            results = [self.attempt(start) for start in starts]
            batch, calls = self._batch, self._calls
        finally:
            self._batch = self._calls = None
        answers = self._ask_spawns(batch) if batch else list
        handed = self.attempt(functools.partial(self._pool.submit_all, calls))  # None, or why none was

        def results_of() -> list[int | None | BaseException]:
            pids = answers()
            return [pids[r] if isinstance(r, _Ticket) else handed if isinstance(r, _Handed) else r for r in results]

        return results_of

    @staticmethod
    def attempt(start: Callable[[], int | None]) -> int | None | BaseException:
        try:
            return start()
        except Exception as exc:  # handed back to the engine thread, which decides
            return exc

    def prepare(self, run_id: int, command: str, spec: EventSpec, env_extra: Mapping[str, str], log: str) -> int:
        return self._spawn(run_id, "prepare", ["/bin/sh", "-c", command], spec, env_extra, log, stdin=None)

    def _spawn(
        self,
        run_id: int,
        phase: str,
        argv: list[str],
        spec: EventSpec,
        env_extra: Mapping[str, str],
        log: str,
        *,
        stdin: str | None,
    ) -> int:
        request = SpawnRequest(
            run_id,
            phase,
            argv,
            spec.cwd,
            {**spec.env, **env_extra},
            log,
            stdin,
            f"--- prepare: {argv[-1]}\n" if phase == "prepare" else None,
            user_ids(spec.user, self.host),
        )
        if self._batch is not None:
            self._batch.append(request)
            return _Ticket(len(self._batch) - 1)
        result = self._ask_spawns([request])()[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _ask_spawns(self, batch: list[SpawnRequest]) -> Callable[[], list[int | BaseException]]:
        """Send `batch` to the supervisor; what it returns waits for a pid, or the SpawnError, for each."""
        for request in batch:  # registered first: a quick command's end may come before its pid
            self._reaper.children[(request.run_id, request.phase)] = Child(request.run_id, request.phase, 0, None)
        try:
            self.supervisor.ensure_started()
            self._reaper.watch_supervisor()  # before asking: the reaper thread hears the answers
            answers = self.supervisor.ask(batch)
        except (SupervisorGone, OSError) as exc:
            answers = functools.partial(_refused_all, batch, exc)
        return functools.partial(self._started, batch, answers)

    def _started(
        self, batch: list[SpawnRequest], answers: Callable[[], list[Started | Refused]]
    ) -> list[int | BaseException]:
        children = self._reaper.children
        try:
            told = answers()
        except (SupervisorGone, OSError) as exc:
            told = _refused_all(batch, exc)
        out: list[int | BaseException] = []
        with self._reaper.lock:
            for request, answer in zip(batch, told, strict=True):
                key = (request.run_id, request.phase)
                child = children.get(key)
                if isinstance(answer, Started):
                    if child is not None:
                        child.pid, child.since_ns = answer.pid, answer.since_ns
                    out.append(answer.pid)
                else:
                    children.pop(key, None)
                    out.append(SpawnError(refusal_message(request, answer)))
        return out

    def adopt(self, run_id: int, pid: int, *, log_path: str | None = None, phase: str = "main") -> bool:
        """Watch a process a previous engine started. When it ends, its outcome is the exit
        file its supervisor writes beside `log_path` (waited for while that supervisor
        lives), or unknown without one. False when the process is gone already."""
        return self._reaper.adopt(run_id, pid, phase, log_path, parent_pid(pid))

    # -- callables and HTTP ------------------------------------------------------------

    def _finish(self, run_id: int, work: Callable[..., tuple[int | None, str | None]], *args: Any) -> None:
        code, error = work(*args)
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    def _run_http(self, run_id: int, spec: EventSpec, log: IO[bytes], facts: HttpRun | None = None) -> None:
        self._finish(run_id, call_http, spec, log, facts)

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
            signal_group(child.pid, signal.SIGTERM)
            timer = threading.Timer(grace_s, signal_group, (child.pid, signal.SIGKILL))
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


def _refused_all(batch: list[SpawnRequest], exc: BaseException) -> list[Started | Refused]:
    return [Refused("exec", 0, str(exc))] * len(batch)


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
