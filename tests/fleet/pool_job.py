"""A command for the fleet pool test: it counts, under a file lock, how many of its kind run at
once (its peak is what a pool of 2 must never exceed), for `seconds`; SIGTERM ends it cleanly."""

from __future__ import annotations

import fcntl
import json
import signal
import sys
import time
from pathlib import Path


def bump(path: Path, delta: int) -> None:
    with path.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        state = json.loads(f.read() or '{"active": 0, "peak": 0, "runs": 0}')
        state["active"] += delta
        state["peak"] = max(state["peak"], state["active"])
        state["runs"] += delta > 0
        f.seek(0)
        f.truncate()
        f.write(json.dumps(state))


def main() -> None:
    path, seconds = Path(sys.argv[1]), float(sys.argv[2])

    def leave(_signum: int, _frame: object) -> None:
        bump(path, -1)
        sys.exit(143)

    signal.signal(signal.SIGTERM, leave)
    bump(path, 1)
    time.sleep(seconds)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    bump(path, -1)


if __name__ == "__main__":
    main()
