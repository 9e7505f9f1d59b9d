"""Work that runs inside the engine's process: callables and HTTP calls, in worker threads.

They cannot outlive the engine: an engine that dies while one runs leaves the run `lost`."""

from __future__ import annotations

import collections
import functools
import importlib
import inspect
import io
import json
import logging
import queue
import sys
import threading
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Template
from typing import IO, Any, cast

from evman.engine.definitions import mask_password
from evman.engine.model import EventSpec, HttpCall
from evman.engine.running.logfiles import TAIL_BYTES

_log = logging.getLogger("evman.executors")


@dataclass(frozen=True)
class RunContext:
    """What a callable is told about the run it serves, when it accepts an argument."""

    event: str
    run_id: int
    attempt: int
    scheduled_for: str
    log: IO[str]
    env: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    """Its run parameters (also given to the callable as keyword arguments)."""

    @classmethod
    def made(
        cls,
        event: str,
        run_id: int,
        attempt: int,
        scheduled_for: str,
        log: IO[str],
        env: Mapping[str, str],
        params: Mapping[str, str],
    ) -> RunContext:
        """RunContext(...), its fields set without the frozen dataclass's __init__ (which sets
        each through object.__setattr__: ~2 µs of every callable of a burst, bench W1)."""
        ctx = cls.__new__(cls)
        ctx.__dict__.update(
            event=event, run_id=run_id, attempt=attempt, scheduled_for=scheduled_for, log=log, env=env, params=params
        )
        return ctx


class LazyLog(io.RawIOBase):
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


class TextLog(io.TextIOBase):
    """A callable's log as text (what RunContext.log is): each write goes, UTF-8 encoded,
    straight to the lazy log below it. Lighter than io.TextIOWrapper, whose making and
    closing were a third of a no-op callable's cost."""

    encoding = "utf-8"

    def __init__(self, raw: LazyLog) -> None:
        super().__init__()
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._raw.write(text.encode("utf-8", "replace"))
        return len(text)


class Workers:
    """The threads that run callables and HTTP calls, fed through one queue of (function,
    args). ThreadPoolExecutor's Futures cost the engine's tick about 15 µs a run, the
    better part of a no-op callable's whole cost, and nothing here reads them."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = 0
        self._closed = False

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("the workers were shut down; no new work can start")
        self._queue.put((work, args))
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # this work claims an idle thread: the next submit cannot count it too
                return
            if len(self._threads) >= self._size:
                return
            thread = threading.Thread(target=self._work, daemon=True, name=f"{self._name}_{len(self._threads)}")
            self._threads.append(thread)
        thread.start()  # like ThreadPoolExecutor: a new thread only while none is idle

    def submit_all(self, works: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        """Hand over several works waking one idle thread, not one per work: the works wait in
        a shared deque, and each thread that takes one wakes one more (once) before it runs its
        own, then takes the next from the deque itself. A thread woken from the engine's thread
        may take that thread's core on a busy machine: a due tick that woke one per run was
        switched out in most ticks (bench W3). And a thread per work, each handing the rest on
        through the queue, was a wake and a GIL hand-over per work: 2,000 callables of ~6 µs
        took ~60 ms to begin (bench W1); a thread that goes on taking works keeps the GIL
        between them. A work that blocks holds up none of the others: the other threads go on
        taking them."""
        if works:
            self.submit(self._drain, collections.deque(works))

    def _drain(self, works: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        handed = False
        while not self._closed:  # shut down: the rest is dropped, as queued work is
            try:
                work, args = works.popleft()
            except IndexError:
                return
            if not handed and works:
                handed = True
                try:
                    self.submit(self._drain, works)
                except RuntimeError:  # shut down meanwhile
                    pass
            try:
                work(*args)
            except BaseException:  # the work reports its own failures; this is a bug in it
                _log.exception("a worker's task failed")

    def prestart(self) -> None:
        """Start every thread now, idle: a burst of calls then finds them waiting, instead of
        starting one per call in the tick that hands the burst over (a start waits for the
        new thread to run, which needs the GIL the busy engine holds: 16 starts took ~30 ms
        of the first part of a burst of 2,000, bench W1)."""
        with self._lock:
            if self._closed or len(self._threads) >= self._size:
                return
            new = [
                threading.Thread(target=self._work, daemon=True, name=f"{self._name}_{n}")
                for n in range(len(self._threads), self._size)
            ]
            self._threads += new
            self._idle += len(new)
        for thread in new:
            thread.start()

    def _work(self) -> None:
        """Each thread is started for, or claimed by, the work it takes next; done, it counts
        itself idle again."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            work, args = item
            try:
                work(*args)
            except BaseException:  # the work reports its own failures; this is a bug in it
                _log.exception("a worker's task failed")
            with self._lock:
                self._idle += 1

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


def run_callable(
    spec: EventSpec,
    run_id: int,
    log: LazyLog,
    attempt: int,
    scheduled_for: str,
    env: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> tuple[int | None, str | None]:
    """Run a `call` event's callable in this thread: (exit code, error in words). Its run
    parameters go to it as keyword arguments (and as ctx.params)."""
    text = TextLog(log)
    code: int | None = 0
    error: str | None = None
    params = dict(params or {})
    try:
        func = resolve_callable(str(spec.call), spec.cwd)
        ctx = RunContext.made(spec.name, run_id, attempt, scheduled_for, cast(IO[str], text), env, params)
        result = _invoke(func, ctx, params, str(spec.call))
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
        log.close()
    if log.error is not None:
        code, error = None, f"{log.error}" + (f"; and {error}" if error else "")
    return code, error


def _invoke(func: Callable[..., Any], ctx: RunContext, params: Mapping[str, str], target: str) -> Any:
    """func(ctx, **params), func(**params), func(ctx) or func(): the context goes to a positional
    argument that no parameter names; a parameter the callable cannot take is refused in words."""
    if not params:
        return func(ctx) if _accepts_argument(func) else func()
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return func(ctx, **params)
    args = signature.parameters.values()
    if not any(a.kind is a.VAR_KEYWORD for a in args):
        takes = {a.name for a in args if a.kind in (a.POSITIONAL_OR_KEYWORD, a.KEYWORD_ONLY)}
        missing = sorted(set(params) - takes)
        if missing:
            raise TypeError(
                f"{target} takes no argument {missing[0]!r}, a run parameter of its event; "
                f"add {missing[0]}=None (or **params) to its arguments"
            )
    positional = [a for a in args if a.kind in (a.POSITIONAL_ONLY, a.POSITIONAL_OR_KEYWORD, a.VAR_POSITIONAL)]
    if positional and positional[0].name not in params:
        return func(ctx, **params)
    return func(**params)


@dataclass(frozen=True)
class HttpRun:
    """What an `http` event's request is told about its run: headers X-Evman-*, and its
    parameters in the body (or, for GET and HEAD, the query string)."""

    event: str
    run_id: int
    attempt: int
    scheduled_for: str
    params: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {
            "X-Evman-Event": self.event,
            "X-Evman-Run-Id": str(self.run_id),
            "X-Evman-Attempt": str(self.attempt),
            "X-Evman-Scheduled-For": self.scheduled_for,
        }


def http_request(call: HttpCall, run: HttpRun | None) -> urllib.request.Request:
    """The request an `http` event makes: its own headers win over evman's X-Evman-* ones; with
    parameters, a body it declares has ${NAME} replaced by their values, and none becomes
    the parameters as a JSON object (GET and HEAD: added to the query string instead)."""
    headers = {**(run.headers() if run else {}), **call.headers}
    url, body, values = call.url, call.body, dict(run.params) if run else {}
    if values and body is not None:
        body = Template(body).safe_substitute(values)
    elif values and call.method in ("GET", "HEAD"):
        url += ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(values)
    elif values:
        body = json.dumps(values, ensure_ascii=False)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    data = body.encode() if body is not None else None
    return urllib.request.Request(url, data=data, method=call.method, headers=headers)


def call_http(spec: EventSpec, log: IO[bytes], run: HttpRun | None = None) -> tuple[int | None, str | None]:
    """Make an `http` event's request in this thread: (status or None, error in words)."""
    call = spec.http
    assert call is not None
    code: int | None = 0
    error: str | None = None
    req = http_request(call, run)
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
    return code, error


_resolved: dict[tuple[str, str], Callable[..., Any]] = {}


def resolve_callable(target: str, cwd: str) -> Callable[..., Any]:
    """The function `target` ("module:attr.path") names, importing it from `cwd`; remembered
    (a module is imported once anyway: a burst of callables looked it up again each time)."""
    found = _resolved.get((target, cwd))
    if found is None:
        found = _resolved[(target, cwd)] = _resolve(target, cwd)
    return found


def _resolve(target: str, cwd: str) -> Callable[..., Any]:
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
