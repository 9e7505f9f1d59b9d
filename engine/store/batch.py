"""The engine's writes as named operations, gathered over a tick and applied in one transaction.

Stages never write SQL: they call these (run_started, run_ended, alert, ...), and the store
runs them in order, a statement repeated for consecutive rows of the same kind (executemany)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from evman.engine.store.alerts import UPSERT_ALERT
from evman.engine.store.engines import HEARTBEAT
from evman.engine.store.errors import Fenced
from evman.engine.store.events import BUMP_HOLDS
from evman.engine.store.part import Part
from evman.engine.store.runs import by_nulls, insert_chunks, insert_run_sql
from evman.engine.vocabulary import ALERT_KINDS, FINISHED_STATES, RunState, states_before

RESOLVED_BY_SUCCESS: Final = tuple(sorted(k for k, facts in ALERT_KINDS.items() if facts.resolved_by_success))
"""The open alert kinds that a later success of the event resolves."""


def in_states(states: Iterable[RunState], on: str = "") -> str:
    """` AND state IN (...)`: the states a run write expects its row in; `on`: "runs." where
    another table is joined."""
    return f" AND {_one_of(states, on)}"


def _one_of(states: Iterable[RunState], on: str) -> str:
    """state = 'a' OR state = 'b', bracketed: a constant IN list would make SQLite build a
    small table at every execution, and executemany executes once per row."""
    return "(" + " OR ".join(f"{on}state = '{state}'" for state in sorted(states)) + ")"


def owned(on: str = "") -> str:
    """` AND engine_id = ? AND epoch = ?`: the row is still the writing engine's (several engines)."""
    return f" AND {on}engine_id = ? AND {on}epoch = ?"


def ends_allowed(on: str = "", to: str = "?") -> str:
    """`CASE <its end> WHEN 'failed' THEN (state = 'running' OR state = 'waiting') ... END`: for
    each finished state, the states model.TRANSITIONS lets a run end in it from, so a run's end
    changes its row only along the table. `to`: the new state's parameter (`?`) or column
    (`v.to_state`); `on`: "runs." where another table is joined."""
    whens = " ".join(f"WHEN '{end}' THEN {_one_of(states_before(end), on)}" for end in sorted(FINISHED_STATES))
    return f"CASE {to} {whens} ELSE FALSE END"


STARTS_FROM: Final = states_before(RunState.RUNNING)
"""The states a run's start expects its row in, read from model.TRANSITIONS."""

_RUN_ENDED: Final = (
    "UPDATE runs SET state = ?, ended_at = ?, exit_code = ?, reason = ?, output_tail = ?, checks = ?, "
    "flags = ?, waiting_reason = NULL, pid = coalesce(?, pid) WHERE " + ends_allowed() + " AND id = ?"
)
"""Its parameters end with (the new state again, id): the guard checks the edge it names."""
_RUN_STARTED: Final = (
    f"UPDATE runs SET state = '{RunState.RUNNING}', started_at = ?, waiting_reason = NULL, "
    "host = ?, log_path = ? WHERE id = ?" + in_states(STARTS_FROM)
)
_RECOVERED: Final = (
    "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at, status, resolved_at) "
    "VALUES ('recovered', ?, ?, ?, ?, ?, ?, 'resolved', ?)"
)
_RESOLVE: Final = (
    "UPDATE alerts SET status = 'resolved', resolved_at = ? WHERE event = ? AND "
    "status = 'open' AND kind IN (" + ", ".join(f"'{k}'" for k in RESOLVED_BY_SUCCESS) + ")"
)
_REPAGE: Final = (
    "UPDATE alerts SET message = ?, updated_at = ?, count = count + 1, run_id = coalesce(?, run_id), "
    "next_page_at = ?, next_attempt_at = ?, pending = 1 "
    "WHERE event = ? AND kind = ? AND status = 'open' AND acknowledged_at IS NULL"
)
_RESOLVE_KIND: Final = (
    "UPDATE alerts SET status = 'resolved', resolved_at = ? WHERE event = ? AND kind = ? AND status = 'open'"
)
_ACK: Final = (
    "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, pending = 0 WHERE id = ? AND acknowledged_at IS NULL"
)
_RUN_PID: Final = "UPDATE runs SET pid = ? WHERE id = ?"
_RUN_PREPARED: Final = "UPDATE runs SET needs_prepare = 0, waiting_reason = NULL WHERE id = ?"
_RUN_WAITING: Final = "UPDATE runs SET waiting_reason = ? WHERE id = ?"
_RUN_LOG: Final = "UPDATE runs SET log_path = ? WHERE id = ?"
_RUN_FLAGS: Final = "UPDATE runs SET flags = ? WHERE id = ?"
_RUN_RELEASED: Final = "UPDATE runs SET engine_id = NULL, epoch = NULL, waiting_reason = ? WHERE id = ?"
_NEXT_FIRE: Final = "UPDATE events SET next_fire_at = ? WHERE name = ?"
_RUN_POOLS: Final = "UPDATE runs SET pools = ? WHERE id = ?"
_RUN_APPROVAL: Final = "UPDATE runs SET approval = ? WHERE id = ?"
_NOTICE: Final = (
    "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at, status, resolved_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'resolved', ?)"
)

_RUNNING: Final = {RunState.RUNNING}
_WAITING: Final = {RunState.WAITING}
GUARDED: Final = {
    _RUN_PID: _RUN_PID + in_states(_RUNNING) + owned(),
    _RUN_PREPARED: _RUN_PREPARED + in_states(_WAITING) + owned(),
    _RUN_WAITING: _RUN_WAITING + in_states(_WAITING) + owned(),
    _RUN_LOG: _RUN_LOG + in_states(_WAITING) + owned(),
    _RUN_RELEASED: _RUN_RELEASED + in_states(_WAITING) + owned(),
    _RUN_FLAGS: _RUN_FLAGS + owned(),  # not a state change: a finished run may gain too_fast
    _RUN_STARTED: _RUN_STARTED + owned(),
    _RUN_POOLS: _RUN_POOLS + in_states(_WAITING) + owned(),
    _RUN_APPROVAL: _RUN_APPROVAL + in_states(_WAITING) + owned(),
    _RUN_ENDED: _RUN_ENDED + owned(),
}
"""Each run write as a compare-and-set for an engine of several: (id, the state it expects,
the owner engine, its epoch). Every statement's parameters end with the run's id, then the
owner's (engine_id, epoch)."""


class Arrays(NamedTuple):
    """One statement for many rows of another (PostgreSQL): the rows' leading columns as one
    array each (`unnest`), the rest (the owner's guards) once. It runs one server statement
    where executemany runs one per row, and changes the same rows as they would."""

    sql: str
    types: tuple[str, ...]
    """The array type of each leading column."""
    key: int
    """The column that names the row (run id, event name): unique within one statement."""

    def params(self, rows: Sequence[Sequence[Any]]) -> tuple[Any, ...] | None:
        """The statement's parameters, or None when the rows cannot share one (a key twice:
        executemany applies both in order; a join over arrays would apply one)."""
        width = len(self.types)
        if len({row[self.key] for row in rows}) < len(rows) or len({tuple(r[width:]) for r in rows}) > 1:
            return None
        return (*([row[i] for row in rows] for i in range(width)), *rows[0][width:])


def _over(*columns: str) -> str:
    """unnest(CAST(? AS type[]), ...) AS v(name, ...) for (name, type) pairs written "name type"."""
    pairs = [c.split() for c in columns]
    return f"unnest({', '.join(f'CAST(? AS {t}[])' for _, t in pairs)}) AS v({', '.join(n for n, _ in pairs)})"


_ENDED_COLUMNS: Final = (
    "state text",
    "ended_at text",
    "exit_code bigint",
    "reason text",
    "output_tail text",
    "checks text",
    "flags text",
    "pid bigint",
    "to_state text",
    "id bigint",
)
ARRAYS: Final = {
    GUARDED[_RUN_ENDED]: Arrays(
        "UPDATE runs SET state = v.state, ended_at = v.ended_at, exit_code = v.exit_code, reason = v.reason, "
        "output_tail = v.output_tail, checks = v.checks, flags = v.flags, waiting_reason = NULL, "
        f"pid = coalesce(v.pid, runs.pid) FROM {_over(*_ENDED_COLUMNS)} WHERE "
        + ends_allowed("runs.", "v.to_state")
        + " AND runs.id = v.id"
        + owned("runs."),
        tuple(c.split()[1] for c in _ENDED_COLUMNS),
        9,
    ),
    GUARDED[_RUN_PID]: Arrays(
        f"UPDATE runs SET pid = v.pid FROM {_over('pid bigint', 'id bigint')} WHERE runs.id = v.id"
        + in_states(_RUNNING, "runs.")
        + owned("runs."),
        ("bigint", "bigint"),
        1,
    ),
    _NEXT_FIRE: Arrays(
        f"UPDATE events SET next_fire_at = v.at FROM {_over('at text', 'name text')} WHERE events.name = v.name",
        ("text", "text"),
        1,
    ),
}
"""The writes a tick makes once per occurrence, as one statement per tick on PostgreSQL. Each
keeps its statement's guards (a run write stays a compare-and-set, counted the same way)."""


class Batch:
    """What one flush writes: new run rows first, then every other write in the order made."""

    def __init__(self) -> None:
        self.runs: list[Sequence[Any]] = []
        """New run rows, each the values of RUN_COLUMNS."""
        self.unowned: list[Sequence[Any]] = []
        """New run rows no engine owns (several engines: runs of events this one does not fit)."""
        self.writes: list[tuple[str, list[Sequence[Any]]]] = []
        self.renew = False
        """Several engines: this flush must happen even with nothing else to write (the lease)."""
        self.requests: set[int] = set()
        """The requests this batch answers or routes: a tick that carries the batch on after a
        failed flush must not act on them again (their rows are still open in the database)."""

    def __bool__(self) -> bool:
        return self.renew or self.has_writes

    @property
    def has_writes(self) -> bool:
        """Anything to write besides the lease (every new kind of write must count here)."""
        return bool(self.runs or self.unowned or self.writes)

    def lease(self) -> None:
        """Renew the engine's lease in this flush (applied with an owner, it always is)."""
        self.renew = True

    def _add(self, sql: str, *params: Any) -> None:
        if self.writes and self.writes[-1][0] == sql:
            self.writes[-1][1].append(params)
        else:
            self.writes.append((sql, [params]))

    # -- runs ------------------------------------------------------------------

    def next_fires_apart(self) -> Batch:
        """Take the next fire times out of this batch, into a batch of their own: a burst
        committed in parts (stages/flush.py) commits them with its last part, as an event's
        next fire time must never be committed before its run (a crash in between would skip
        the occurrence; the other way round it is made again, and dropped as a duplicate)."""
        apart = Batch()
        apart.writes = [(sql, rows) for sql, rows in self.writes if sql == _NEXT_FIRE]
        self.writes = [(sql, rows) for sql, rows in self.writes if sql != _NEXT_FIRE]
        return apart

    def extend(self, other: Batch) -> None:
        """Add `other`'s writes after this batch's own."""
        self.runs += other.runs
        self.unowned += other.unowned
        for sql, rows in other.writes:
            for row in rows:
                self._add(sql, *row)
        self.renew = self.renew or other.renew

    def insert_run(self, values: Sequence[Any], *, owned: bool = True) -> None:
        (self.runs if owned else self.unowned).append(values)

    def clear_runs(self) -> None:
        self.runs.clear()
        self.unowned.clear()

    def run_pid(self, run_id: int, pid: int) -> None:
        self._add(_RUN_PID, pid, run_id)

    def run_prepared(self, run_id: int) -> None:
        self._add(_RUN_PREPARED, run_id)

    def run_waiting(self, run_id: int, reason: str | None) -> None:
        self._add(_RUN_WAITING, reason, run_id)

    def run_started(self, run_id: int, at: str | None, host: str, log_path: str | None) -> None:
        """Running from `at` on `host`, its output in `log_path` (the file its command writes)."""
        self._add(_RUN_STARTED, at, host, log_path, run_id)

    def run_log(self, run_id: int, log_path: str) -> None:
        """A waiting run's log, chosen as its prepare step starts (the step writes there first)."""
        self._add(_RUN_LOG, log_path, run_id)

    def forget_start(self, run_id: int) -> None:
        """Drop a run_started not yet written (several engines: its pool slots must be given again)."""
        self.writes = [(sql, [r for r in rows if sql != _RUN_STARTED or r[-1] != run_id]) for sql, rows in self.writes]
        self.writes = [(sql, rows) for sql, rows in self.writes if rows]

    def run_flags(self, run_id: int, flags: str | None) -> None:
        self._add(_RUN_FLAGS, flags, run_id)

    def run_pools(self, run_id: int, pools: str | None) -> None:
        """A waiting run joins the line for these pools ("warehouse=1"), or leaves it (None)."""
        self._add(_RUN_POOLS, pools, run_id)

    def run_approval(self, run_id: int, record: str | None) -> None:
        """Who approved or rejected a waiting run, when, with which comment (JSON)."""
        self._add(_RUN_APPROVAL, record, run_id)

    def run_released(self, run_id: int, reason: str) -> None:
        """Several engines: this waiting run is no engine's now (one that fits it claims it)."""
        self._add(_RUN_RELEASED, reason, run_id)

    def run_ended(
        self,
        run_id: int,
        *,
        state: str,
        ended_at: str | None,
        exit_code: int | None,
        reason: str | None,
        output_tail: str | None,
        checks: str | None,
        flags: str | None,
        pid: int | None,
    ) -> None:
        """`run_id` ends in `state` (a finished one); its row changes only if the table lets its
        state go there (ends_allowed)."""
        self._add(_RUN_ENDED, state, ended_at, exit_code, reason, output_tail, checks, flags, pid, state, run_id)

    # -- events, requests, the engine row ---------------------------------------------

    def next_fire(self, event: str, at: str | None) -> None:
        self._add(_NEXT_FIRE, at, event)

    def held(self, event: str, held: bool, by: str | None, until: str | None = None) -> None:
        """Hold or release `event` (held until `until`, if given); holds_version moves with it, so
        every engine reads the holds again (another engine may own the event's waiting runs)."""
        self._add("UPDATE events SET held = ?, held_by = ?, held_until = ? WHERE name = ?", int(held), by, until, event)
        self._add(BUMP_HOLDS)

    def request_handled(self, request_id: int, at: str | None, outcome: str, detail: str | None) -> None:
        self.requests.add(request_id)
        self._add(
            "UPDATE requests SET handled_at = ?, outcome = ?, detail = ? WHERE id = ?", at, outcome, detail, request_id
        )

    def request_routed(self, request_id: int, engine_id: int) -> None:
        """Leave the request open for the engine that owns what it names (it claims it next)."""
        self.requests.add(request_id)
        self._add("UPDATE requests SET engine_id = ? WHERE id = ? AND handled_at IS NULL", engine_id, request_id)

    def request_queued(
        self,
        request_id: int,
        verb: str,
        target: str,
        args: str | None,
        requested_by: str,
        at: str | None,
        engine_id: int | None,
    ) -> None:
        """A follow-on request, for the engine that owns what it names (several engines)."""
        self._add(
            "INSERT INTO requests (id, verb, target, args, requested_by, requested_at, engine_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            request_id,
            verb,
            target,
            args,
            requested_by,
            at,
            engine_id,
        )

    def heartbeat(self, at: str | None, pid: int) -> None:
        self._add(HEARTBEAT, at, pid)

    # -- alerts ------------------------------------------------------------------

    def alert(self, kind: str, event: str, run_id: int | None, route: str | None, message: str, at: str | None) -> None:
        """Open an alert of (event, kind), or add to the open one."""
        self._add(UPSERT_ALERT, kind, event, run_id, route, message, at, at)

    def alerts_resolved_by_success(self, event: str, at: str | None) -> None:
        self._add(_RESOLVE, at, event)

    def alert_recovered(self, event: str, run_id: int, route: str | None, message: str, at: str | None) -> None:
        self._add(_RECOVERED, event, run_id, route, message, at, at, at)

    def alert_notice(self, kind: str, event: str, run_id: int, route: str | None, message: str, at: str | None) -> None:
        """A page sent once that asks for nothing (approved, rejected, ...): a resolved alert row."""
        self._add(_NOTICE, kind, event, run_id, route, message, at, at, at)

    def alert_paged_again(self, event: str, kind: str, run_id: int | None, message: str, at: str | None) -> None:
        """Page the open (event, kind) alert again now, with a new message (not once acknowledged)."""
        self._add(_REPAGE, message, at, run_id, at, at, event, kind)

    def alert_resolved(self, event: str, kind: str, at: str | None) -> None:
        self._add(_RESOLVE_KIND, at, event, kind)

    def alert_acked(self, alert_id: int, by: str, at: str | None) -> None:
        self._add(_ACK, by, at, alert_id)


class BatchPart(Part):
    def apply(self, batch: Batch, owner: Any = None) -> int:
        """Run `batch` in one transaction; returns how many of its new runs were inserted (an
        occurrence that exists already is not inserted again).

        owner (an engine of several, a fleet Token): the transaction first renews the owner's
        lease, new runs are its own, and every run write is a compare-and-set on the owner; a
        lease lost or a write refused raises Fenced and nothing of the batch is written."""
        if owner is not None:
            return self._apply_owned(batch, owner)
        with self.transaction():
            inserted = 0
            for present, values in by_nulls([*batch.runs, *batch.unowned]).items():
                for sql, params in insert_chunks(present, values):
                    inserted += self.execute(sql, params).rowcount
            for sql, rows in batch.writes:
                if len(rows) == 1:
                    self.execute(sql, rows[0])
                else:
                    self.execute_many(sql, rows)
        return inserted

    def _apply_owned(self, batch: Batch, owner: Any) -> int:
        token = (owner.engine_id, owner.epoch)
        if not batch.has_writes and not self.holds_claims:
            self.renew_lease(owner)  # nothing else to write: the renewal alone, no BEGIN/COMMIT
            return 0
        with self.transaction():
            self.renew_lease(owner)
            ignored = self._insert_owned(batch.runs, token) | self._insert_owned(batch.unowned, None)
            for sql, rows in batch.writes:
                guarded = GUARDED.get(sql)
                if guarded is None:
                    self._write_many(sql, rows)
                    continue
                mine = [(*row, *token) for row in rows if row[-1] not in ignored]
                if mine and self._write_many(guarded, mine) != len(mine):
                    raise Fenced(self.refused_why(owner, guarded, mine))
        return len(batch.runs) + len(batch.unowned) - len(ignored)

    def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """executemany, or one statement over arrays where the dialect and the rows allow it;
        how many rows changed."""
        arrays = ARRAYS.get(sql) if self.dialect.arrays and len(rows) > 1 else None
        params = arrays.params(rows) if arrays is not None else None
        if arrays is None or params is None:
            return self.execute_many(sql, rows)
        return int(self.execute(arrays.sql, params).rowcount)

    def _insert_owned(self, runs: Sequence[Sequence[Any]], token: tuple[int, int] | None) -> set[int]:
        """Insert the new runs as `token`'s (None: no engine's); the ids of those whose
        occurrence existed already."""
        if not runs:
            return set()
        inserted = set(
            self.inserted_ids(
                insert_run_sql(owned=token is not None) + " RETURNING id",
                [(*row, *token) for row in runs] if token else list(runs),
            )
        )
        return {int(row[0]) for row in runs} - inserted

    def apply_statements(self, writes: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Raw (statement, rows) pairs in one transaction: for tests and tools that seed a
        database, never for the engine (whose writes are a Batch)."""
        with self.transaction():
            for sql, rows in writes:
                self.execute_many(sql, rows)
