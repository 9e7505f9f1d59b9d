"""Facts about processes on this host, read from the kernel."""

from __future__ import annotations

import os
import signal
from datetime import datetime


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. A zombie counts as dead: under an init that does not reap
    orphans (some containers) a dead engine's or command's pid stays a zombie for ever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group `pid` leads; a group that is gone already is fine."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def started_near(pid: int, at: datetime | None, *, within_s: float = 120) -> bool:
    """Guard against a reused pid: the process must have started within `within_s` of `at`."""
    if at is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    except (OSError, ValueError, StopIteration, IndexError):
        return True
    started = btime + start_ticks / os.sysconf("SC_CLK_TCK")
    return abs(started - at.timestamp()) < within_s


def session_leaders_with(environ: set[bytes]) -> list[int]:
    """Live session leaders whose environment holds every entry of `environ` (KEY=value)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[3]) != pid:
                    continue  # not a session leader
            with open(f"/proc/{pid}/environ", "rb") as fh:
                seen = set(fh.read().split(b"\0"))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if environ <= seen and pid_alive(pid):
            found.append(pid)
    return found


def parent_pid(pid: int) -> int | None:
    """The parent of `pid` (None when it is gone, or its parent is init)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return ppid if ppid > 1 else None
