"""Starting runs (child processes, callables, HTTP calls) and reaping them into Outcomes."""
from __future__ import annotations

import functools
import importlib
import io
import inspect
import logging
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, cast

from engine.clock import Clock
from engine.definitions import mask_password
from engine.model import EventSpec

_log = logging.getLogger("evman.executors")

TAIL_BYTES: Final = 64 * 1024
SPAWN_THREADS: Final = 8
"""Threads that start a burst of commands together (two or more scale on two cores)."""
KILL_GRACE_S: Final = 5.0


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


@dataclass(frozen=True)
class RunContext:
    """What a callable is told about the run it serves, when it accepts an argument."""
    event: str
    run_id: int
    attempt: int
    scheduled_for: str
    log: IO[str]
    env: Mapping[str, str] = field(default_factory=dict)


class SpawnError(RuntimeError):
    pass


class _LazyLog(io.RawIOBase):
    """A callable's log, created at its first write: a callable that prints nothing leaves
    no file and no folder behind (`read_tail` and the console read a missing log as no
    output), which spares a burst of callables two file-system writes each."""

    def __init__(self, open_log: Callable[[], IO[bytes]]) -> None:
        super().__init__()
        self._open_log = open_log
        self._file: IO[bytes] | None = None
        self.error: str | None = None
        """Why the log could not be opened; its output was dropped and the run fails."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self._file is None and self.error is None:
            try:
                self._file = self._open_log()
            except OSError as exc:
                self.error = f"cannot open its log {exc.filename}: {exc.strerror or exc}"
        if self._file is None:
            return size
        return self._file.write(data) or 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


@dataclass
class _Child:
    run_id: int
    phase: str
    proc: subprocess.Popen[bytes] | None
    """None for a process adopted from a previous engine: watched, but not our child."""
    pid: int
    pidfd: int
    log: IO[bytes] | None
    killed_by: str | None = None


class _Workers:
    """The threads that run callables and HTTP calls, fed through one queue of (function,
    args). ThreadPoolExecutor's Futures cost the engine's tick about 15 µs a run, the
    better part of a no-op callable's whole cost, and nothing here reads them."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = 0
        self._closed = False

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("the workers were shut down; no new work can start")
        self._queue.put((work, args))
        with self._lock:
            grow = self._idle == 0 and len(self._threads) < self._size
            if grow:  # like ThreadPoolExecutor: a new thread only while none is idle
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}_{len(self._threads)}")
                self._threads.append(thread)
        if grow:
            thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            work, args = item
            try:
                work(*args)
            except BaseException:  # the work reports its own failures; this is a bug in it
                _log.exception("a worker's task failed")

    def shutdown(self) -> None:
        """Drop the work not started yet and let the threads end after what they are doing."""
        self._closed = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)


class Executors:
    """Owns every child process, worker thread and log file of a running engine."""

    def __init__(self, clock: Clock, logs_dir: Path, on_done: Callable[[Outcome], None],
                 workers: int = 16) -> None:
        self.clock = clock
        self.logs_dir = logs_dir
        self._logs_text = str(logs_dir)
        self.on_done = on_done
        self._pool = _Workers(workers, "evman-call")
        self._spawner: ThreadPoolExecutor | None = None
        self._children: dict[tuple[int, str], _Child] = {}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap_loop, name="evman-reaper", daemon=True)
        self._reaper.start()

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

    def start(self, run_id: int, spec: EventSpec, env_extra: Mapping[str, str],
              attempt: int, scheduled_for: str) -> int | None:
        """Start the run; returns the child's pid (None for callables and HTTP). Raises SpawnError."""
        if spec.run is not None:
            return self._spawn(run_id, "main", list(spec.run), spec, env_extra, stdin=spec.stdin)
        if spec.shell is not None:
            return self._spawn(run_id, "main", ["/bin/sh", "-c", spec.shell], spec, env_extra,
                               stdin=spec.stdin)
        if spec.call is not None:
            ctx_env = {**spec.env, **env_extra}
            log = _LazyLog(functools.partial(self._open_log, spec.name, run_id))
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
            self.on_done(Outcome(run_id, "main", None, self.clock.now(),
                                 f"cannot open its log {self.log_path(spec.name, run_id)}: "
                                 f"{exc.strerror or exc}"))
            return
        work(run_id, spec, log, *args)

    def start_all(self, starts: list[Callable[[], int | None]]) -> list[int | None | BaseException]:
        """Call each of `starts`, SPAWN_THREADS at a time; its pid (or None), or what it raised.

        A fork+exec holds the calling thread for most of a millisecond, mostly in the kernel,
        so on two cores several threads start a burst of commands about twice as fast."""
        if len(starts) < 2:
            return [self.attempt(start) for start in starts]
        if self._spawner is None:
            self._spawner = ThreadPoolExecutor(max_workers=SPAWN_THREADS, thread_name_prefix="evman-spawn")
        return list(self._spawner.map(self.attempt, starts))

    @staticmethod
    def attempt(start: Callable[[], int | None]) -> int | None | BaseException:
        try:
            return start()
        except Exception as exc:  # handed back to the engine thread, which decides
            return exc

    def prepare(self, run_id: int, command: str, spec: EventSpec, env_extra: Mapping[str, str]) -> int:
        return self._spawn(run_id, "prepare", ["/bin/sh", "-c", command], spec, env_extra, stdin=None)

    def _spawn(self, run_id: int, phase: str, argv: list[str], spec: EventSpec,
               env_extra: Mapping[str, str], *, stdin: str | None) -> int:
        log = self._open_log(spec.name, run_id)
        if phase == "prepare":
            log.write(f"--- prepare: {argv[-1]}\n".encode())
        env = {**os.environ, **spec.env, **env_extra}
        try:
            proc = subprocess.Popen(
                argv, cwd=spec.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                start_new_session=True, close_fds=True, **_user_kwargs(spec.user))
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv, cwd or env
            log.close()
            raise SpawnError(_spawn_message(argv, spec, exc)) from exc
        if stdin is not None and proc.stdin is not None:
            self._feed_stdin(proc.stdin, stdin)
        self._watch(_Child(run_id, phase, proc, proc.pid, os.pidfd_open(proc.pid), log))
        return proc.pid

    def adopt(self, run_id: int, pid: int) -> bool:
        """Watch a process a previous engine started; its exit code cannot be known."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        self._watch(_Child(run_id, "main", None, pid, pidfd, None))
        return True

    def _watch(self, child: _Child) -> None:
        with self._lock:
            self._children[(child.run_id, child.phase)] = child
            self._selector.register(child.pidfd, selectors.EVENT_READ, child)
        os.write(self._wake_w, b"x")

    def _feed_stdin(self, pipe: IO[bytes], text: str) -> None:
        def feed() -> None:
            try:
                pipe.write(text.encode())
            except OSError:
                pass  # the child closed its stdin early: nothing more to give it
            finally:
                pipe.close()
        threading.Thread(target=feed, daemon=True).start()

    # -- callables and HTTP ------------------------------------------------------------

    def _run_call(self, run_id: int, spec: EventSpec, log: _LazyLog, attempt: int,
                  scheduled_for: str, env: Mapping[str, str]) -> None:
        text = io.TextIOWrapper(cast(IO[bytes], log), encoding="utf-8", write_through=True)
        code: int | None = 0
        error: str | None = None
        try:
            func = resolve_callable(str(spec.call), spec.cwd)
            ctx = RunContext(spec.name, run_id, attempt, scheduled_for, text, env)
            result = func(ctx) if _accepts_argument(func) else func()
            if result is not None:
                text.write(f"returned: {result!r}\n")
            if isinstance(result, bool) and result is False:
                code, error = 1, "the callable returned False"
            elif isinstance(result, int) and not isinstance(result, bool):
                code = result
        except BaseException as exc:  # a crash in user code is a failed run, never an engine crash
            text.write(traceback.format_exc())
            code, error = None, f"{type(exc).__name__}: {exc}"
        finally:
            text.close()
        if log.error is not None:
            code, error = None, f"{log.error}" + (f"; and {error}" if error else "")
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    def _run_http(self, run_id: int, spec: EventSpec, log: IO[bytes]) -> None:
        call = spec.http
        assert call is not None
        code: int | None = 0
        error: str | None = None
        data = call.body.encode() if call.body is not None else None
        req = urllib.request.Request(call.url, data=data, method=call.method, headers=dict(call.headers))
        status: int | None = None
        try:
            with urllib.request.urlopen(req, timeout=call.timeout_s) as resp:
                status = int(resp.status)
                log.write(f"HTTP {status}\n".encode() + resp.read(TAIL_BYTES))
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            log.write(f"HTTP {status}\n".encode() + exc.read(TAIL_BYTES))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            shown = mask_password(call.url)  # the reason is shown and logged: no credentials in it
            why = str(getattr(exc, "reason", exc)).replace(call.url, shown)
            code, error = None, f"{call.method} {shown} failed: {why}"
        finally:
            log.close()
        if status is not None and status != call.expect:
            code, error = status, f"HTTP {status}, expected {call.expect}"
        self.on_done(Outcome(run_id, "main", code, self.clock.now(), error))

    # -- reaping -----------------------------------------------------------------------

    def _reap_loop(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    os.read(self._wake_r, 4096)
                    continue
                self._reap(key.data)

    def _reap(self, child: _Child) -> None:
        code = child.proc.wait() if child.proc is not None else None
        with self._lock:
            self._selector.unregister(child.pidfd)
            self._children.pop((child.run_id, child.phase), None)
        os.close(child.pidfd)
        if child.log is not None:
            child.log.close()
        error = None
        if code is None:
            error = "exit status unknown: it ended while no engine was its parent"
        elif code < 0:
            error = f"ended by signal {signal.Signals(-code).name}"
        self.on_done(Outcome(child.run_id, child.phase, code, self.clock.now(), error, child.killed_by))

    # -- killing -------------------------------------------------------------------------

    def kill(self, run_id: int, *, by: str, grace_s: float = KILL_GRACE_S) -> bool:
        """TERM the run's whole process group, then KILL it after `grace_s`. False if not ours."""
        with self._lock:
            children = [c for (rid, _), c in self._children.items() if rid == run_id]
        for child in children:
            child.killed_by = by
            _signal_group(child.pid, signal.SIGTERM)
            timer = threading.Timer(grace_s, _signal_group, (child.pid, signal.SIGKILL))
            timer.daemon = True
            timer.start()
        return bool(children)

    def is_ours(self, run_id: int) -> bool:
        with self._lock:
            return any(rid == run_id for rid, _ in self._children)

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
        if self._spawner is not None:
            self._spawner.shutdown(wait=False)
        return left

    @staticmethod
    def clock_monotonic() -> float:
        import time
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


def resolve_callable(target: str, cwd: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    if cwd and cwd not in sys.path:
        sys.path.append(cwd)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


def _accepts_argument(func: Callable[..., Any]) -> bool:
    try:
        return _accepts_argument_cached(func)
    except TypeError:  # an unhashable callable object: ask each time
        return _signature_accepts(func)


@functools.lru_cache(maxsize=1024)
def _accepts_argument_cached(func: Callable[..., Any]) -> bool:
    """inspect.signature costs more than many a callable's whole run: once per function."""
    return _signature_accepts(func)


def _signature_accepts(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _user_kwargs(user: str | None) -> dict[str, Any]:
    if user is None:
        return {}
    import pwd
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _spawn_message(argv: list[str], spec: EventSpec, exc: OSError | ValueError) -> str:
    if isinstance(exc, FileNotFoundError) and not Path(spec.cwd).is_dir():
        return (f"working directory {spec.cwd} does not exist. Create it, or fix the event's cwd "
                f"and load the definitions again.")
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {argv[0]!r} (looked in PATH). Check the event's run."
    if isinstance(exc, PermissionError):
        return f"permission denied running {argv[0]!r}: {exc.strerror}. Is it executable?"
    return f"could not start {argv[0]!r}: {exc}"


def run_env(event: str, run_id: int, attempt: int, scheduled_for: str | None) -> dict[str, str]:
    return {"EVMAN_EVENT": event, "EVMAN_RUN_ID": str(run_id), "EVMAN_ATTEMPT": str(attempt),
            "EVMAN_SCHEDULED_FOR": scheduled_for or ""}


__all__ = ["Executors", "Outcome", "RunContext", "SpawnError", "read_tail", "run_env"]
