"""An engine's flush on PostgreSQL: the writes made once per occurrence (a run's end, a
command's pid, an event's next fire time) go as one statement over arrays for a whole tick,
and stay what they were one row at a time: each run write a compare-and-set on (id, state,
owner, epoch), a batch whose count falls short refused whole (Fenced), every value kept as
given (NULLs, quotes, backslashes, newlines, non-ASCII). A flush with only the lease is the
renewal alone, and the requests claim opens no transaction when nothing is queued. Real
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from evman.engine.model import FINISHED_STATES, TRANSITIONS, RunState
from evman.engine.store import Batch, open_store
from evman.engine.store.batch import ARRAYS, GUARDED
from evman.engine.store.errors import Fenced
from evman.engine.store.fleet import Token
from evman.engine.store.pg_store import PgStore
from evman.engine.store.schema import RUN_COLUMNS
from tests.outside import rows

pytest.importorskip("psycopg")

AT = "2026-01-05T00:00:01+00:00"


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PgStore]:
    s = open_store(pg_dsn)
    assert isinstance(s, PgStore)
    with s.transaction():
        s.execute_many(
            "INSERT INTO events (name, spec, kind, timezone, next_fire_at, created_at, updated_at) "
            "VALUES (?, '{}', 'command', 'UTC', ?, ?, ?)",
            [(f"e{i}", AT, AT, AT) for i in range(4)],
        )
    yield s
    s.close()


def join(store: PgStore) -> Token:
    token, _live = store.register_engine(host="here", pid=1, tags=None, lease_s=30.0, tick_s=1.0, version="test")
    return token


def run_row(run_id: int, event: str) -> list[Any]:
    values: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    values.update(
        id=run_id,
        event=event,
        state="running",
        trigger="schedule",
        attempt=1,
        scheduled_for=AT,
        created_at=AT,
        needs_prepare=0,
        started_at=AT,
    )
    return [values[c] for c in RUN_COLUMNS]


def started(store: PgStore, token: Token, count: int) -> None:
    batch = Batch()
    for i in range(count):
        batch.insert_run(run_row(i + 1, f"e{i}"))
    assert store.apply(batch, owner=token) == count


TEXTS = [None, 'it\'s "quoted"', "back\\slash\nnew line, {braces}", "ünïcode ✓"]


def ends(batch: Batch, count: int) -> None:
    for i in range(count):
        batch.run_ended(
            i + 1,
            state="succeeded" if i % 2 else "failed",
            ended_at=AT,
            exit_code=None if i == 0 else i,
            reason=TEXTS[i],
            output_tail=TEXTS[-1 - i],
            checks=None,
            flags=TEXTS[i],
            pid=None if i < 2 else 100 + i,
        )


def test_a_ticks_ends_pids_and_fire_times_are_one_statement_each_and_keep_every_value(
    store: PgStore, pg_dsn: str
) -> None:
    token = join(store)
    started(store, token, 4)
    batch = Batch()
    for i in range(4):
        batch.run_pid(i + 1, 500 + i)
    for i in range(4):
        batch.next_fire(f"e{i}", None if i % 2 else f"2026-01-06T00:00:0{i}+00:00")
    ends(batch, 4)
    for sql, group in batch.writes:  # each group goes over arrays (one statement), not row by row
        owned = [(*row, token.engine_id, token.epoch) for row in group] if sql in GUARDED else group
        assert ARRAYS[GUARDED.get(sql, sql)].params(owned) is not None
    store.apply(batch, owner=token)
    got = rows(pg_dsn, "SELECT id, state, exit_code, reason, output_tail, flags, pid FROM runs ORDER BY id")
    assert got == [
        {
            "id": i + 1,
            "state": "succeeded" if i % 2 else "failed",
            "exit_code": None if i == 0 else i,
            "reason": TEXTS[i],
            "output_tail": TEXTS[-1 - i],
            "flags": TEXTS[i],
            "pid": 500 + i if i < 2 else 100 + i,
        }
        for i in range(4)
    ]
    fires = rows(pg_dsn, "SELECT name, next_fire_at FROM events ORDER BY name")
    assert [r["next_fire_at"] for r in fires] == [None if i % 2 else f"2026-01-06T00:00:0{i}+00:00" for i in range(4)]


def test_a_run_another_engine_owns_refuses_the_whole_batch(store: PgStore, pg_dsn: str) -> None:
    mine, other = join(store), join(store)
    started(store, mine, 3)
    with store.transaction():
        store.execute("UPDATE runs SET engine_id = ?, epoch = ? WHERE id = 2", (other.engine_id, other.epoch))
    batch = Batch()
    ends(batch, 3)
    with pytest.raises(Fenced, match="run 2 is running of engine"):
        store.apply(batch, owner=mine)
    assert {r["state"] for r in rows(pg_dsn, "SELECT state FROM runs")} == {"running"}
    batch = Batch()
    for i in (0, 2):
        batch.run_pid(i + 1, 700)
    batch.run_pid(2, 700)
    with pytest.raises(Fenced):
        store.apply(batch, owner=mine)
    assert {r["pid"] for r in rows(pg_dsn, "SELECT pid FROM runs")} == {None}


def test_a_key_twice_in_one_group_goes_row_by_row_in_order(store: PgStore, pg_dsn: str) -> None:
    token = join(store)
    batch = Batch()
    batch.next_fire("e0", "2026-01-06T00:00:00+00:00")
    batch.next_fire("e0", "2026-01-07T00:00:00+00:00")
    (group,) = [g for _, g in batch.writes]
    assert ARRAYS[batch.writes[0][0]].params(group) is None
    store.apply(batch, owner=token)
    assert rows(pg_dsn, "SELECT next_fire_at FROM events WHERE name = 'e0'") == [
        {"next_fire_at": "2026-01-07T00:00:00+00:00"}
    ]


def test_a_flush_with_only_the_lease_renews_it_alone_and_still_finds_out_when_fenced(
    store: PgStore, pg_dsn: str
) -> None:
    token = join(store)
    before = rows(pg_dsn, "SELECT lease_until FROM engines")[0]["lease_until"]
    lease = Batch()
    lease.lease()
    assert lease and not lease.has_writes
    unowned = Batch()
    unowned.insert_run(run_row(9, "e0"), owned=False)
    assert unowned.has_writes  # a run no engine owns is a write: the flush inserts it
    store.apply(lease, owner=token)
    assert not store.holds_claims
    assert rows(pg_dsn, "SELECT lease_until FROM engines")[0]["lease_until"] > before
    with store.transaction():
        store.execute(
            "UPDATE engines SET state = 'dead', taken_over_by = 99, taken_over_at = ? WHERE id = ?",
            (AT, token.engine_id),
        )
    with pytest.raises(Fenced, match="taken over by engine 99"):
        store.apply(lease, owner=token)


def test_the_requests_claim_opens_a_transaction_only_when_something_is_queued(store: PgStore) -> None:
    token = join(store)
    assert store.claim_requests(token) == [] and not store.holds_claims
    other = open_store(store.target)
    try:
        request_id = other.add_request("ack", "e0", requested_by="test")
    finally:
        other.close()
    assert [int(r["id"]) for r in store.claim_requests(token)] == [request_id] and store.holds_claims
    second = open_store(store.target)
    assert isinstance(second, PgStore)
    try:  # another engine skips the claimed row meanwhile, and opens no transaction for nothing
        assert second.claim_requests(join(second)) == [] and not second.holds_claims
        store.drop_claims()  # the first engine's tick fails: the request is still its own
        assert not store.holds_claims
        assert second.claim_requests(join(second)) == [] and not second.holds_claims
    finally:
        second.close()
    assert [int(r["id"]) for r in store.claim_requests(token)] == [request_id]
    store.drop_claims()


class _Undo(Exception):
    """Rolls back the transaction a form of a write ran in."""


def _what_changes(store: PgStore, run: Any) -> tuple[int, list[dict[str, Any]]]:
    """(rows counted, the runs table after) of `run(store)` in a transaction rolled back after."""
    try:
        with store.transaction():
            count = run(store)
            after = store.dicts("SELECT id, state, ended_at, reason, pid, engine_id FROM runs ORDER BY id")
            raise _Undo
    except _Undo:
        return count, after


@pytest.mark.parametrize("write", ["end", "pid"])
def test_the_row_form_and_the_array_form_change_the_same_rows(store: PgStore, write: str) -> None:
    """Every (state it is in, state it ends in, owner) a run can have: the compare-and-set of
    a run's end (and of a pid) is built from one fragment for both forms, and both change
    exactly the same rows, those the table allows and this engine owns."""
    mine, other = join(store), join(store)
    cases = [(old, new, owner) for old in RunState for new in FINISHED_STATES for owner in (mine, other)]
    batch = Batch()
    for n, (old, _, owner) in enumerate(cases, start=1):
        row = run_row(n, "e0")
        row[RUN_COLUMNS.index("state")] = old
        row[RUN_COLUMNS.index("scheduled_for")] = f"2026-01-05T00:{n // 60:02d}:{n % 60:02d}+00:00"
        batch.insert_run(row, owned=owner is mine)
    store.apply(batch, owner=mine)
    with store.transaction():
        store.execute(
            "UPDATE runs SET engine_id = ?, epoch = ? WHERE engine_id IS NULL", (other.engine_id, other.epoch)
        )
    writes = Batch()
    for n, (_, new, _) in enumerate(cases, start=1):
        if write == "end":
            writes.run_ended(
                n, state=new, ended_at=AT, exit_code=n, reason=f"r{n}", output_tail=None, checks=None, flags=None, pid=n
            )
        else:
            writes.run_pid(n, 1000 + n)
    ((sql, group),) = writes.writes
    rows_ = [(*row, mine.engine_id, mine.epoch) for row in group]
    arrays = ARRAYS[GUARDED[sql]]
    params = arrays.params(rows_)
    assert params is not None
    by_rows = _what_changes(store, lambda s: s.execute_many(GUARDED[sql], rows_))
    by_arrays = _what_changes(store, lambda s: int(s.execute(arrays.sql, params).rowcount))
    assert by_rows == by_arrays
    changed = {r["id"] for r in by_rows[1] if (r["reason"] if write == "end" else r["pid"]) is not None}
    if write == "end":
        expected = {n for n, (old, new, owner) in enumerate(cases, 1) if owner is mine and new in TRANSITIONS[old]}
    else:
        expected = {n for n, (old, _, owner) in enumerate(cases, 1) if owner is mine and old is RunState.RUNNING}
    assert changed == expected and by_rows[0] == len(expected) > 0
