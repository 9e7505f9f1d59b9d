"""Deleting a run's log: the file its recorded `runs.log_path` names, the exit records the
supervisor wrote beside it, and a day's folder once it is empty. Whatever layout wrote the log
(one folder per event, or per event and day), the recorded path is what is deleted."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Final

from evman.engine.running.supervisor_client import exit_path

PHASES: Final = ("main", "prepare")


def unlink_log(log_path: str) -> int:
    """Delete the log and its exit records; the bytes freed. A file already gone is fine."""
    freed = 0
    for path in (log_path, *(exit_path(log_path, phase) for phase in PHASES)):
        try:
            freed += os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
    return freed


def remove_empty_day_folders(log_paths: Iterable[str], today: date) -> int:
    """rmdir the folders (and their parents) that held these logs when the folder is named for a
    day before yesterday and is empty: no run writes into a past day's folder, so this races
    nothing. A folder named otherwise (an event's own, in the older layout) is left alone."""
    removed = 0
    for folder in sorted({Path(p).parent for p in log_paths}, key=lambda f: len(f.parts), reverse=True):
        for candidate in (folder, folder.parent):
            day = _day_of(candidate.name)
            if day is None or (today - day).days < 2:
                continue
            try:
                candidate.rmdir()
                removed += 1
            except OSError:
                continue  # not empty (or already gone): fine
    return removed


def _day_of(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None
