"""A request is acted on once even when the tick that answered it could not write (issue 24, seen
in the fleet drill): the answer and the run it made are carried to the next tick, which must not
answer the still-open row a second time. The write fails for real: the engine's SQLite
connection may not grow the file (a full disk)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import Store, StoreError
from evman.engine.store.stores import SqliteStore
from tests.outside import connect, rows

JOB = """
[defaults]
timezone = "UTC"
[[event]]
name = "job"
call = "builtins:len"
concurrency = "queue"
"""


def test_a_request_answered_in_a_tick_that_could_not_write_is_not_answered_again(
    engine_factory: Callable[..., Engine], store: Store, clock: FakeClock, db_path: Path
) -> None:
    engine = engine_factory(JOB)
    assert isinstance(store, SqliteStore)
    store.add_request("trigger", "job", requested_by="first " + "x" * 8000)  # its run needs new pages
    pages = int(store.conn.execute("PRAGMA page_count").fetchone()[0])
    store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the engine's own connection: a full disk
    with pytest.raises(StoreError, match="full"):
        engine.tick()
    other = connect(db_path)  # another program writes meanwhile: the engine looks at the mailbox again
    other.execute("INSERT INTO requests (verb, target, requested_by) VALUES ('hold', 'nothing', 'second')")
    other.close()
    store.conn.execute("PRAGMA max_page_count = 1073741823")  # space returns
    engine.settle(clock.now())
    made = [r["triggered_by"] for r in rows(db_path, "SELECT triggered_by FROM runs")]
    assert len(made) == 1 and made[0].startswith("first ") and made[0].endswith(" (request 1)")
    assert [r["outcome"] for r in rows(db_path, "SELECT outcome FROM requests ORDER BY id")][0] == "ok"
