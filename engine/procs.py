"""Facts about processes on this host, read from the kernel."""
from __future__ import annotations

import os


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
