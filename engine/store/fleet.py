"""Several engines on one PostgreSQL database: the `engines` rows, leases on the database's
clock, takeover of an engine whose lease ran out, and the claims that keep work single-owned.

Every statement that changes what an engine owns is a compare-and-set; the caller checks the
row count (see HACKING.md, "PostgreSQL and several engines")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from evman.engine.store.errors import Fenced
from evman.engine.store.part import Part

LEASE_TICKS: Final = 3
"""A lease lasts this many ticks: a survivor takes over at most 3 ticks + 1 after the last renewal."""


def _at(seconds_param: str = "?") -> str:
    """The database's time plus `seconds_param` seconds, as ISO text."""
    return (
        "to_char((clock_timestamp() + make_interval(secs => " + seconds_param + ")) AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
    )


_NOW: Final = _at("0")

_REGISTER: Final = (
    "INSERT INTO engines (host, pid, epoch, tags, state, started_at, heartbeat_at, lease_until, "
    f"lease_s, tick_s, version) VALUES (?, ?, nextval('engine_epoch'), ?, 'live', {_NOW}, {_NOW}, "
    f"{_at('CAST(? AS double precision)')}, ?, ?, ?) RETURNING id, epoch"
)
RENEW: Final = (
    f"UPDATE engines SET heartbeat_at = {_NOW}, lease_until = {_at('lease_s')} "
    "WHERE id = ? AND epoch = ? AND state = 'live' AND taken_over_at IS NULL"
)
"""The first statement of every write transaction of an engine: row count 0 means fenced.
A lease that ran out but that nobody took yet may still be renewed: the renewal and a
takeover both update this row, so PostgreSQL orders them, and the loser finds out."""
_RELEASE: Final = (
    f"UPDATE engines SET state = 'stopped', stopped_at = {_NOW}, heartbeat_at = {_NOW}, "
    f"lease_until = {_NOW} WHERE id = ? AND epoch = ? AND state = 'live'"
)
_FENCED: Final = (
    f"UPDATE engines SET state = 'fenced', stopped_at = coalesce(stopped_at, {_NOW}), reason = ? "
    "WHERE id = ? AND epoch = ?"
)
_OTHERS: Final = (
    f"SELECT id, host, pid, state, lease_until < {_NOW} AS expired, tags, lease_until FROM engines "
    "WHERE state IN ('live', 'stopped') AND taken_over_at IS NULL AND id <> ?"
)
_LIVE_OTHERS: Final = (
    f"SELECT id, host, pid, state, lease_until < {_NOW} AS expired, tags, lease_until FROM engines "
    "WHERE state = 'live' AND taken_over_at IS NULL AND id <> ?"
)
"""The engines live when one joins, whether their lease ran out or not: after a database outage
longer than the lease every lease has run out, and the engines renew once they reconnect."""
_CLAIM_KEYS: Final = (
    "INSERT INTO request_keys (dedupe_key, request_id) SELECT k, min(i) FROM unnest(CAST(? AS text[]), "
    "CAST(? AS bigint[])) AS v(k, i) GROUP BY k ON CONFLICT (dedupe_key) DO NOTHING"
)
"""One autocommit statement: each key seen in open rows goes to the oldest of them, unless a
request holds it already (the unique key orders two engines claiming it at once)."""
_JOIN_LOCK: Final = 0x65766D616F
"""Held while an engine joins: of engines starting together, each sees those that joined before."""
_KILLS: Final = "SELECT trim(target) FROM requests WHERE handled_at IS NULL AND lower(trim(verb)) = 'kill'"
"""What the open kill requests name (run:N or an event): hashed once per look, not per row."""
_UNOWNED_FIT: Final = (
    "FROM runs WHERE state IN ('waiting', 'running') AND engine_id IS NULL AND (state = 'running' "
    "OR event <> ALL(?) OR due_by <= ? OR (late_at <= ? AND coalesce(flags, '') NOT LIKE '%late%') "
    f"OR event IN ({_KILLS}) OR 'run:' || id IN ({_KILLS}))"
)
"""Runs no engine owns that this one may take: any running one (to judge it), the waiting ones
of events it fits (the first parameter: the events it does not fit), and, whatever their
event, those whose window closed or that are late and not yet said to be (then: now), or that
an open kill request names, to judge them (missed, late, killed) and hand on what is left.
Found through runs_engine_active (engine_id IS NULL is an index condition there); none of
these: nothing to take."""
_ORPHANS: Final = "SELECT id " + _UNOWNED_FIT + " LIMIT 1"
_CLAIM_UNOWNED: Final = (
    "UPDATE runs SET engine_id = ?, epoch = ? WHERE engine_id IS NULL AND id IN (SELECT id "
    + _UNOWNED_FIT
    + " ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING *"
)
"""A compare-and-set under the row lock: a run another engine claimed meanwhile is not taken,
and one it is claiming now (locked) is skipped, never waited for."""
CLAIM_LIMIT: Final = 1000
_PLACED: Final = (
    "SELECT name, spec::jsonb -> 'hosts', spec::jsonb -> 'tags' FROM events WHERE defined = 1 AND "
    "(CASE WHEN jsonb_typeof(spec::jsonb -> 'hosts') = 'array' THEN jsonb_array_length(spec::jsonb -> 'hosts') "
    "ELSE 0 END > 0 OR CASE WHEN jsonb_typeof(spec::jsonb -> 'tags') = 'array' "
    "THEN jsonb_array_length(spec::jsonb -> 'tags') ELSE 0 END > 0)"
)
_TAKE_ENGINES: Final = (
    "UPDATE engines SET state = CASE WHEN state = 'live' THEN 'dead' ELSE state END, "
    f"taken_over_by = ?, taken_over_at = {_NOW}, stopped_at = coalesce(stopped_at, {_NOW}), "
    "reason = coalesce(reason, CASE WHEN state = 'stopped' THEN 'stopped' WHEN id = ANY(?) "
    "THEN 'its process was gone' ELSE 'lease expired at ' || lease_until END) "
    "WHERE id IN (SELECT id FROM engines WHERE id = ANY(?) AND taken_over_at IS NULL "
    f"AND state IN ('live', 'stopped') AND (state = 'stopped' OR lease_until < {_NOW} OR id = ANY(?)) "
    "FOR UPDATE SKIP LOCKED) "
    "RETURNING id, host, pid, epoch, CASE WHEN state = 'dead' THEN 'live' ELSE state END"
)
"""Re-checked under the row lock: an engine that renewed meanwhile is not taken. A row locked
now (its engine is inside a write, or stopped inside one) is skipped, never waited for: the
server ends a stopped engine's transaction after a lease (Membership.session_limits), and the
next tick takes it."""
_TAKE_RUNS: Final = (
    "UPDATE runs SET engine_id = ?, epoch = ? WHERE state IN ('waiting', 'running') AND engine_id = ANY(?) RETURNING *"
)
"""Every active run of the engines taken over: the running ones are judged by the taker, and
its waiting ones it does not fit it hands on at once (unowned, lifecycle.release)."""


@dataclass(frozen=True)
class Token:
    """Who may write: an engine's id and the epoch it was given at its start."""

    engine_id: int
    epoch: int


@dataclass(frozen=True)
class OpenEngine:
    """Another engine that has not been taken over: live (its lease may have run out) or stopped."""

    id: int
    host: str
    pid: int
    state: str
    expired: bool
    tags: frozenset[str]
    lease_until: str = ""
    """Its lease's end as last renewed (the database's clock, ISO text): a later one means it renewed."""


def _open_engine(row: Any) -> OpenEngine:
    tags = frozenset(t for t in (row[5] or "").split(",") if t)
    return OpenEngine(int(row[0]), str(row[1]), int(row[2]), str(row[3]), bool(row[4]), tags, str(row[6]))


@dataclass(frozen=True)
class Gone:
    """An engine taken over: its identity, and whether it had stopped cleanly."""

    id: int
    host: str
    pid: int
    epoch: int
    was: str


_LIVE: Final = "SELECT 1 FROM engines e WHERE e.id = requests.{} AND e.state = 'live' AND e.taken_over_at IS NULL"
_OPEN_FOR: Final = (
    "SELECT * FROM requests WHERE handled_at IS NULL "
    f"AND (engine_id IS NULL OR engine_id = ? OR NOT EXISTS ({_LIVE.format('engine_id')})) "
    f"AND (claimed_by IS NULL OR claimed_by = ? OR engine_id = ? OR NOT EXISTS ({_LIVE.format('claimed_by')})) "
    "ORDER BY id LIMIT ?"
)
"""The open requests routed to this engine or to none, and those routed to an engine that is no
longer live (stopped, fenced, taken over): whoever claims one routes it again to the runs'
owner now, so a request never waits on an engine that will not answer. Not those another live
engine is answering (claimed_by), unless routed here."""
_MINE: Final = (
    "UPDATE requests SET claimed_by = ? WHERE id = ANY(?) AND handled_at IS NULL "
    f"AND (claimed_by IS NULL OR claimed_by = ? OR engine_id = ? OR NOT EXISTS ({_LIVE.format('claimed_by')})) "
    "RETURNING id"
)
"""One autocommit statement: these requests are this engine's to answer until it answers them
or is no longer live. A tick whose write failed keeps them: the next one writes its answer,
and no other engine acts on them meanwhile (a row lock would have gone with the transaction)."""


class FleetPart(Part):
    several_engines = True
    _claimed: tuple[int, ...] = ()
    """The requests this engine's last look claimed (claim_requests)."""

    def register_engine(
        self, *, host: str, pid: int, tags: str | None, lease_s: float, tick_s: float, version: str
    ) -> tuple[Token, list[OpenEngine]]:
        """This engine's row, and the other engines live when it joined, their lease run out or
        not (joins take turns)."""
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(?)", (_JOIN_LOCK,))
            row = self.row(_REGISTER, (host, pid, tags, lease_s, lease_s, tick_s, version))
            assert row is not None
            live = [_open_engine(r) for r in self.rows(_LIVE_OTHERS, (int(row[0]),))]
        return Token(int(row[0]), int(row[1])), live

    def renew_lease(self, token: Token) -> None:
        """In the caller's transaction: renew, or raise Fenced (the transaction must roll back)."""
        if self.execute(RENEW, (token.engine_id, token.epoch)).rowcount != 1:
            raise Fenced(self.fenced_why(token))

    def fenced_why(self, token: Token) -> str:
        row = self.one_dict(
            "SELECT state, lease_until, taken_over_by, taken_over_at FROM engines WHERE id = ?", (token.engine_id,)
        )
        if row is None:
            return f"engine {token.engine_id} has no row any more"
        if row["taken_over_by"] is not None:
            return (
                f"engine {token.engine_id} (epoch {token.epoch}) was taken over by engine "
                f"{row['taken_over_by']} at {row['taken_over_at']}: its lease ran out at {row['lease_until']}"
            )
        return f"engine {token.engine_id} (epoch {token.epoch}) is {row['state']}, not live"

    def mark_fenced(self, token: Token, reason: str) -> None:
        with self.transaction():
            self.execute(_FENCED, (reason, token.engine_id, token.epoch))

    def release_lease(self, token: Token) -> None:
        """A graceful stop: the lease ends now, and every engine listening hears of it."""
        with self.transaction():
            self.execute(_RELEASE, (token.engine_id, token.epoch))
            self.execute("SELECT pg_notify('evman', ?)", (f"released {token.engine_id}",))

    def take_over(
        self,
        token: Token,
        host: str,
        is_alive: Callable[[int], bool],
        unfit: Sequence[str],
        now: str,
        saw: Callable[[list[OpenEngine]], None],
        expired_too: bool = True,
    ) -> tuple[list[Gone], list[dict[str, Any]]]:
        """Engines whose lease ran out (unless not `expired_too`), that stopped, or (on `host`)
        whose process is gone, marked taken over by `token`'s engine, and their waiting and
        running runs, now its own, with the unowned runs it fits (any running one; waiting ones
        of events not in `unfit`): one transaction, so two survivors never share one. `saw`
        hears the other open engines. Two cheap reads when there is nothing to take (an unowned
        run of an event in `unfit` is not something to take)."""
        others = [_open_engine(r) for r in self.rows(_OTHERS, (token.engine_id,))]
        saw(others)
        dead_here = [e.id for e in others if e.host == host and e.state == "live" and not is_alive(e.pid)]
        due = [e.id for e in others if e.state == "stopped" or (e.expired and expired_too) or e.id in dead_here]
        fit = (list(unfit), now, now)
        if not due and self.row(_ORPHANS, fit) is None:
            return [], []
        with self.transaction():
            self.renew_lease(token)
            gone = (
                [
                    Gone(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]))
                    for r in self.rows(_TAKE_ENGINES, (token.engine_id, dead_here, due, dead_here))
                ]
                if due
                else []
            )
            runs = self.dicts(_TAKE_RUNS, (token.engine_id, token.epoch, [g.id for g in gone])) if gone else []
            runs += self.dicts(_CLAIM_UNOWNED, (token.engine_id, token.epoch, *fit, CLAIM_LIMIT))
        return gone, sorted(runs, key=lambda r: int(r["id"]))

    def dedupe_holder(self, key: str, request_id: int) -> int | None:
        """The request that acts on `key`: the one whose claim of it committed first
        (claim_requests claims the keys of the open rows it sees before it locks any). None
        when the key has no claim yet (the row committed after the look): the next tick's look
        claims it. Two engines, or rows committed in any order, never both act on one key."""
        value = self.value("SELECT request_id FROM request_keys WHERE dedupe_key = ?", (key,))
        return None if value is None else int(value)

    def fleet_id(self) -> str:
        """The fleet's own id (made with its tables): every engine on a host agrees on its log folder."""
        return str(self.value("SELECT value FROM settings WHERE key = 'fleet_id'") or "")

    def placed_events(self) -> dict[str, tuple[list[str], list[str]]]:
        """name -> (hosts, tags) of the defined events that say where they run."""
        return {str(r[0]): (list(r[1] or []), list(r[2] or [])) for r in self.rows(_PLACED)}

    def refused_why(self, owner: Any, sql: str, rows: Sequence[Sequence[Any]]) -> str:
        """Which guarded run write was refused, for the fenced engine's last log line."""
        ids = [int(r[-3]) for r in rows]
        found = {
            int(r["id"]): r
            for r in self.dicts("SELECT id, state, engine_id, epoch FROM runs WHERE id = ANY(?)", (ids,))
        }
        bad = [
            f"run {i} is {found[i]['state']} of engine {found[i]['engine_id']} (epoch {found[i]['epoch']})"
            if i in found
            else f"run {i} does not exist"
            for i in ids
            if i not in found or (found[i]["engine_id"], found[i]["epoch"]) != (owner.engine_id, owner.epoch)
        ]
        verb = sql.split(" WHERE ")[0]
        return f"engine {owner.engine_id} (epoch {owner.epoch}) was refused `{verb}`: " + (
            "; ".join(bad[:5]) or "a run was not in the state the engine held it in"
        )

    def claim_requests(self, owner: Any = None, limit: int = 1000) -> list[Any]:
        """The open requests for this engine, locked for it until its tick commits. First, with
        no transaction open, a look (nothing queued: no transaction at all), the claim of the
        dedupe keys it saw (the oldest open row of a key not claimed yet holds it, whichever
        engine answers it) and of the requests themselves (claimed_by), each committed at once:
        they outlive a tick that fails."""
        if owner is None:
            return self.claim("SELECT * FROM requests WHERE handled_at IS NULL ORDER BY id LIMIT ?", (limit,))
        if not self.holds_claims:
            me = owner.engine_id
            seen = self.rows(_OPEN_FOR, (me, me, me, limit))
            if not seen:
                return []
            keys = [(str(r["dedupe_key"]), int(r["id"])) for r in seen if r["dedupe_key"]]
            if keys:
                self.execute(_CLAIM_KEYS, ([k for k, _ in keys], [i for _, i in keys]))
            mine = [int(r[0]) for r in self.rows(_MINE, (me, [int(r["id"]) for r in seen], me, me))]
            if not mine:
                return []
            self._claimed = tuple(mine)
        return self.claim(
            "SELECT * FROM requests WHERE id = ANY(?) AND handled_at IS NULL ORDER BY id", (list(self._claimed),)
        )

    def active_elsewhere(self, events: Sequence[str], owner: Any) -> list[dict[str, Any]]:
        """The waiting and running runs of `events` that other engines own, or none does
        (runs_event_active): what concurrency, running(E) and requests must count besides
        this engine's own. One statement for a whole tick's events."""
        return self.dicts(
            "SELECT id, event, state, engine_id, created_at, flags FROM runs WHERE event = ANY(?) AND state IN "
            "('waiting', 'running') AND engine_id IS DISTINCT FROM ? ORDER BY id",
            (list(events), owner.engine_id),
        )

    def next_request_ids(self, count: int) -> list[int]:
        """`count` request ids from the requests sequence: a follow-on request an engine queues
        for another is named by its id in the answer to the request it came from."""
        return [
            int(r[0])
            for r in self.rows(
                "SELECT nextval(pg_get_serial_sequence('requests', 'id')) FROM generate_series(1, ?)", (count,)
            )
        ]

    def adopted_elsewhere(self, run_ids: list[int], token: Token) -> set[int]:
        """Of these runs, those another engine (on this host) now watches while they run."""
        return {
            int(r[0])
            for r in self.rows(
                "SELECT id FROM runs WHERE id = ANY(?) AND state = 'running' AND engine_id IS DISTINCT FROM ?",
                (run_ids, token.engine_id),
            )
        }

    def engines(self, *, include_stopped: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        """Every engine row, live first, with what it runs now (its running run ids)."""
        where = "" if include_stopped else "WHERE e.state = 'live'"
        return self.dicts(
            "SELECT e.*, (SELECT string_agg(CAST(r.id AS TEXT), ',' ORDER BY r.id) FROM runs r "
            "WHERE r.engine_id = e.id AND r.state = 'running') AS running, "
            f"e.state = 'live' AND e.lease_until > {_NOW} AS live FROM engines e {where} "
            "ORDER BY (e.state = 'live') DESC, e.id DESC LIMIT ?",
            (limit,),
        )

    def live_engine_count(self) -> int:
        return int(self.value(f"SELECT count(*) FROM engines WHERE state = 'live' AND lease_until > {_NOW}"))

    def next_run_ids(self, count: int) -> list[int]:
        """`count` run ids from the runs sequence, in one round trip."""
        return [
            int(r[0])
            for r in self.rows(
                "SELECT nextval(pg_get_serial_sequence('runs', 'id')) FROM generate_series(1, ?)", (count,)
            )
        ]
