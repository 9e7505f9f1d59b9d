"""Hearing how the engine's commands ended: every child it has, and the reaper thread that waits
on the command supervisor's socket (which reports each end) and on the pidfd of every process
adopted from a previous engine (whose end is the exit file its supervisor writes)."""

from __future__ import annotations

import os
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from evman.engine.clock import Clock
from evman.engine.running.outcome import Outcome, outcome_of
from evman.engine.running.procs import pid_alive
from evman.engine.running.supervisor_client import ExitRecord, SupervisorClient, read_exit

EXIT_FILE_WAIT_S: Final = 5.0
"""How long an adopted command's end waits for its (live) supervisor's exit file."""


@dataclass
class Child:
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


class Reaper:
    """The children of a running engine by (run id, phase), and the thread that reaps them:
    each end becomes an Outcome for `on_done`."""

    def __init__(self, clock: Clock, logs_dir: Path, on_done: Callable[[Outcome], None]) -> None:
        self.clock = clock
        self.on_done = on_done
        self.children: dict[tuple[int, str], Child] = {}
        self.lock = threading.Lock()
        self.supervisor = SupervisorClient(logs_dir.absolute(), self._exited, self._supervisor_gone)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._watched_sock: int | None = None
        self.stopping = False
        self._thread = threading.Thread(target=self._loop, name="evman-reaper", daemon=True)
        self._thread.start()

    def watch_supervisor(self) -> None:
        """Hear the supervisor's reports (once it runs; again after a new one started)."""
        fd = self.supervisor.fileno()
        if fd is None or fd == self._watched_sock:
            return
        with self.lock:
            self._selector.register(fd, selectors.EVENT_READ, self.supervisor)
            self._watched_sock = fd
        os.write(self._wake_w, b"x")

    def adopt(self, run_id: int, pid: int, phase: str, log_path: str | None, writer: int | None) -> bool:
        """Watch a process by its pidfd to its end; False when it is gone already."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        child = Child(run_id, phase, pid, pidfd, log_path, writer)
        with self.lock:
            self.children[(run_id, phase)] = child
            self._selector.register(pidfd, selectors.EVENT_READ, child)
        os.write(self._wake_w, b"x")
        return True

    def of(self, run_id: int) -> list[Child]:
        """The started children of a run (its command, its prepare step)."""
        with self.lock:
            return [c for (rid, _), c in self.children.items() if rid == run_id and c.pid]

    def count(self) -> int:
        with self.lock:
            return len(self.children)

    def stop(self) -> list[int]:
        """Stop reaping; the run ids still running."""
        with self.lock:
            left = sorted({rid for rid, _ in self.children})
        self.stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        return left

    # -- in the reaper thread -------------------------------------------------------------

    def _exited(self, record: ExitRecord) -> None:
        """The supervisor says a command ended."""
        with self.lock:
            child = self.children.pop((record.run_id, record.phase), None)
        killed_by = child.killed_by if child is not None else None
        self.on_done(outcome_of(record, self.clock.now(), killed_by))

    def _supervisor_gone(self, running: dict[tuple[int, str], int]) -> None:
        """The supervisor died under its commands: watch them to their end, whose status is
        lost with it."""
        with self.lock:
            if self._watched_sock is not None:
                self._selector.unregister(self._watched_sock)
                self._watched_sock = None
        for (run_id, phase), pid in running.items():
            with self.lock:
                self.children.pop((run_id, phase), None)
            if not self.adopt(run_id, pid, phase, None, None):
                self.on_done(Outcome(run_id, phase, None, self.clock.now(), "exit status unknown: its supervisor died"))

    def _loop(self) -> None:
        while not self.stopping:
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    os.read(self._wake_r, 4096)
                elif key.data is self.supervisor:
                    if not self.supervisor.readable():
                        self._unwatch_supervisor(key.fd)
                else:
                    self._reap_adopted(key.data)

    def _unwatch_supervisor(self, fd: int) -> None:
        with self.lock:
            if self._watched_sock == fd:
                self._selector.unregister(fd)
                self._watched_sock = None

    def _reap_adopted(self, child: Child) -> None:
        assert child.pidfd is not None
        with self.lock:
            self._selector.unregister(child.pidfd)
            self.children.pop((child.run_id, child.phase), None)
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


def _await_exit_record(child: Child) -> ExitRecord | None:
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
