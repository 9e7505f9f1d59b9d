"""Make a database with history, as the evman of a given commit writes it (run with that commit's code):

    git archive COMMIT | tar -x -C /tmp/old && cd /tmp/old && uv sync
    uv run python /path/to/make_history_db.py OUT.db

The real engine on a FakeClock: a day of hourly runs (succeeded, failed, retried, one waiting on
another's success), a failure alert for a route that never answered, a held event, handled and
open requests. tests/store/test_upgrade.py opens the result with today's code."""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine

try:
    from evman.engine.store import open_store
except ImportError:  # the earlier release this script runs with opened a database as Store(PATH)
    from evman.engine.store import Store as open_store  # type: ignore[assignment]

START = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)
DEFINITIONS = """
[defaults]
timezone = "UTC"
driver = "ops"

[routes]
ops = ["json://127.0.0.1:9/hook"]

[[event]]
name = "extract"
run = "true"
schedule = "every 1 hour"

[[event]]
name = "load"
run = "true"
requires = "success(extract)"

[[event]]
name = "flaky"
run = "false"
schedule = "every 6 hours"
on_failure = { retries = 1, backoff = "1m" }

[[event]]
name = "paused"
run = "true"
schedule = "every 2 hours"
"""


def main(out: Path) -> None:
    clock = FakeClock(START)
    store = open_store(out)
    defs = parse_definitions(
        textwrap.dedent(DEFINITIONS), source="history.toml", base_dir=out.parent, known_events=store.event_names()
    )
    catalog.save(store, defs, now=clock.now())
    engine = Engine(store, clock=clock, logs_dir=out.parent / "history.logs")
    engine.start()
    store.add_request("hold", "paused", requested_by="fixture")
    for _ in range(24 * 6):  # a day, every ten minutes
        clock.advance(timedelta(minutes=10))
        engine.settle(clock.now())
    store.add_request("trigger", "extract", requested_by="fixture")  # left open: no tick after it
    engine.executors.shutdown(wait_s=0)
    engine.stop()
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
