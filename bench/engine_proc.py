"""An engine process for W6: `python -m bench.engine_proc DB` ticks on DB until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def main(path: str) -> int:
    from evman.engine.engine import Engine
    from evman.engine.store import open_store

    engine = Engine(open_store(Path(path)), tick_s=1.0, stop_grace_s=1.0)
    engine.start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        engine.stop()

    signal.signal(signal.SIGTERM, stop)
    thread = threading.Thread(target=engine.run, name="engine")
    thread.start()
    print("ready", flush=True)
    while thread.is_alive():
        thread.join(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
