"""A tick that fails half-way is carried on whole (issue 24, found by the fleet drill): a run that
ended in it gets its follow-ups at the next tick, once. The failure is the database's own: the
engine's role loses SELECT on a table between two ticks, so a read fails after the run's end was
judged (on `alerts`: before its follow-ups begin; on `runs`: while its follower is being made),
and gets it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.store import StoreError, open_store
from tests.fleet.common import TICK_S, Make, load
from tests.outside import rows, wait_until
from tests.pgserver import PgServer

CHAIN = """
[defaults]
timezone = "UTC"
[[event]]
name = "first"
run = "sleep 0.2"
on_success = ["second"]
[[event]]
name = "second"
call = "os:getcwd"
"""


@pytest.fixture
def role(pg_server: PgServer, pg_dsn: str) -> Iterator[tuple[str, str]]:
    """(a role that is no superuser, its URL to the test's database): privileges can be taken."""
    name = "engine_" + unquote(urlsplit(pg_dsn).path.lstrip("/"))
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name, f"postgresql:///{urlsplit(pg_dsn).path.lstrip('/')}?host={pg_server.socket_dir}&user={name}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'DROP OWNED BY "{name}"')
        admin.execute(f'DROP ROLE "{name}"')


@pytest.mark.parametrize("table", ["alerts", "runs"])
def test_a_run_that_ended_in_a_failed_tick_gets_its_follow_ups_once(
    table: str, role: tuple[str, str], pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    name, url = role
    load(pg_dsn, CHAIN, tmp_path, clock)
    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{name}"')
    admin.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{name}"')
    engine = Engine(open_store(url), clock=clock, tick_s=TICK_S, logs_dir=tmp_path / "logs")
    engine.start()
    try:
        open_store(pg_dsn).add_request("trigger", "first")
        engine.tick()
        assert [r["state"] for r in rows(pg_dsn, "SELECT state FROM runs")] == ["running"]
        admin.execute(f'REVOKE SELECT ON {table} FROM "{name}"')
        wait_until(lambda: engine.executors.running_count() == 0, timeout=10, what="the command to end")
        with pytest.raises(StoreError, match="permission denied"):
            engine.tick()  # judged it, then could not read what its follow-ups need
        admin.execute(f'GRANT SELECT ON {table} TO "{name}"')
        engine.settle(clock.now())
        got = rows(pg_dsn, "SELECT event, state, triggered_by FROM runs ORDER BY id")
        assert [(r["event"], r["state"]) for r in got] == [("first", "succeeded"), ("second", "succeeded")]
    finally:
        engine.executors.shutdown(wait_s=0)
        engine.store.close()
        admin.close()


JOB = """
[defaults]
timezone = "UTC"
[[event]]
name = "job"
call = "os:getcwd"
concurrency = "queue"
"""


def test_a_request_whose_answer_could_not_be_written_is_not_answered_by_another_engine(
    make: Make, pg_dsn: str, clock: FakeClock, tmp_path: Path
) -> None:
    """A answers a request, but its write fails (the database refuses A's insert); B, ticking
    before A tries again, must not act on the request too: A still holds it, and A's next tick
    writes the answer and the run it made."""
    load(pg_dsn, JOB, tmp_path, clock)
    a, b = make(), make()
    request = open_store(pg_dsn).add_request("trigger", "job", requested_by="program", dedupe_key="once")
    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$"
    )
    admin.execute(
        "CREATE TRIGGER refuse_a BEFORE INSERT ON runs FOR EACH ROW "
        f"WHEN (NEW.engine_id = {a.fleet.token.engine_id}) EXECUTE FUNCTION refuse()"  # type: ignore[union-attr]
    )
    try:
        with pytest.raises(StoreError, match="No space left"):
            a.tick()
        b.tick()
        admin.execute("DROP TRIGGER refuse_a ON runs")
        a.settle(clock.now())
        b.settle(clock.now())
        (answer,) = rows(pg_dsn, "SELECT outcome, detail FROM requests")
        made = rows(pg_dsn, "SELECT id, engine_id, triggered_by FROM runs")
        assert [(r["engine_id"], r["triggered_by"]) for r in made] == [
            (a.fleet.token.engine_id, f"program (request {request})")  # type: ignore[union-attr]
        ]
        assert answer == {"outcome": "ok", "detail": f"run {made[0]['id']}"}
    finally:
        admin.close()
