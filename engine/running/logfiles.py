"""Where a run's output goes, and reading it back.

A run's log is `<logs root>/<event>/<YYYY-MM-DD>/<run id>.log`, the UTC day its command (or its
prepare step) started: a folder holds one event's runs of one day, at most 86,400 for an event
that runs every second, never a year of them, and no run writes into a folder of a day that
ended before it started (retention removes a past day's folder once it is empty). The engine that starts a run chooses its file and records it in
`runs.log_path` with the start; every reader (the engine that judges the run, `evman show`, the
console, retention) goes by that recorded path, so logs written under an earlier layout
(`<root>/<event>/<run id>.log`) or by another engine's root are read where they are. The exit
record of a command lies with its log (supervisor_files.record_exit)."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from typing import IO, Final

TAIL_BYTES: Final = 64 * 1024


def log_path(root: str, event: str, run_id: int, day: datetime) -> str:
    """The log of run `run_id` of `event` in `day`'s folder under the (absolute) `root`."""
    if os.sep in event or root.endswith(os.sep):  # what os.path.join treats otherwise
        return os.path.join(root, event, _day(day), f"{run_id}.log")
    return f"{root}{os.sep}{event}{os.sep}{_day(day)}{os.sep}{run_id}.log"  # join: ~1 µs a run of a burst


def _day(at: datetime) -> str:
    return _day_of(at)


@functools.lru_cache(maxsize=64)
def _day_of(at: datetime) -> str:
    """The folder of the day of `at` (UTC, or naive); remembered: a tick's runs share one time,
    and strftime was ~30,000 instructions a run, a twelfth of a due tick (bench W3). Equal aware times
    are one key: the same instant, the same UTC day."""
    return (at if at.tzinfo is None else at.astimezone(UTC)).strftime("%Y-%m-%d")


def make_folders(folder: str) -> None:
    """`folder` and every missing level above it, each 0700 itself (makedirs would give the
    levels above the last the umask's mode, and others could plant a folder there)."""
    missing: list[str] = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            pass


def open_log(path: str) -> IO[bytes]:
    """The log opened for appending (created 0600, its folders 0700)."""
    make_folders(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def read_tail(path: str | None, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a run's log, decoded leniently ("" when there is none)."""
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
