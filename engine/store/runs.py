"""Runs: reading them (active, latest, history, durations) and inserting them."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import chain, compress
from operator import is_not
from typing import Any, Final

from evman.engine.clock import iso
from evman.engine.ranks import HISTORY_RUNS, nearest_rank
from evman.engine.store.part import Part, Row, in_chunks
from evman.engine.store.schema import RUN_COLUMNS


@functools.lru_cache(maxsize=2)
def insert_run_sql(*, owned: bool = False) -> str:
    """One run row with every column; an occurrence that exists already is left alone
    (unique event + scheduled_for + attempt), so no occurrence is ever inserted twice.
    owned: with the owner engine's id and epoch after the columns (several engines)."""
    cols = ", ".join((*RUN_COLUMNS, "engine_id", "epoch") if owned else RUN_COLUMNS)
    marks = ", ".join("?" for _ in range(len(RUN_COLUMNS) + (2 if owned else 0)))
    return f"INSERT INTO runs ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"


MAX_VARIABLES: Final = 999
"""Bound parameters per statement that every SQLite allows (3.32 and later allow 32,766)."""


def insert_some_sql(present: tuple[bool, ...], rows: int = 1) -> str:
    """insert_run_sql for rows whose columns are NULL where `present` is False: those are
    left out (NULL by default) rather than bound. Binding a NULL costs Python 3.11's sqlite3
    ~0.4 µs (its adaptation protocol), and a new run's row has about 15 of them. `rows`: that
    many rows in one statement (insert_chunks)."""
    return _insert_some_sql(present, rows)


@functools.lru_cache(maxsize=256)
def _insert_some_sql(present: tuple[bool, ...], rows: int) -> str:
    cols = list(compress(RUN_COLUMNS, present))
    one = f"({', '.join('?' * len(cols))})"
    return f"INSERT INTO runs ({', '.join(cols)}) VALUES {', '.join([one] * rows)} ON CONFLICT DO NOTHING"


def insert_chunks(present: tuple[bool, ...], rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, list[Any]]]:
    """(statement, parameters) inserting `rows` (of one by_nulls group), as many rows in a
    statement as MAX_VARIABLES allows: a statement of one row each (executemany) steps SQLite
    once per row and lets go of the GIL around each step, and the engine then waited to take
    it back from the worker threads running a burst's callables (bench W1)."""
    per = max(1, MAX_VARIABLES // max(1, sum(present)))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        yield insert_some_sql(present, len(chunk)), list(chain.from_iterable(chunk))


def by_nulls(rows: Sequence[Sequence[Any]]) -> dict[tuple[bool, ...], list[tuple[Any, ...]]]:
    """Run rows (the values of RUN_COLUMNS) grouped by which of them are NULL, each row
    without its NULLs, for insert_some_sql. A burst's rows all fall in one group."""
    groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        present = tuple(map(is_not, row, _NULLS))
        groups.setdefault(present, []).append(tuple(compress(row, present)))
    return groups


_NULLS: Final = (None,) * len(RUN_COLUMNS)


class RunsPart(Part):
    def max_run_id(self) -> int:
        return int(self.value("SELECT coalesce(max(id), 0) FROM runs"))

    def active_runs(self) -> list[dict[str, Any]]:
        return self.dicts("SELECT * FROM runs WHERE state IN ('waiting', 'running') ORDER BY id")

    def run(self, run_id: int) -> dict[str, Any] | None:
        return self.one_dict("SELECT * FROM runs WHERE id = ?", (run_id,))

    def last_finished(self, event: str) -> Row | None:
        return self.row(
            "SELECT id, state, ended_at, exit_code FROM runs "
            "WHERE event = ? AND ended_at IS NOT NULL AND state != 'skipped' "
            "ORDER BY ended_at DESC LIMIT 1",
            (event,),
        )

    def max_attempt(self, event: str, scheduled_for: str) -> int:
        return int(
            self.value(
                "SELECT coalesce(max(attempt), 0) FROM runs WHERE event = ? AND scheduled_for = ?",
                (event, scheduled_for),
            )
        )

    def latest_run(self, event: str) -> dict[str, Any] | None:
        return self.one_dict("SELECT * FROM runs WHERE event = ? ORDER BY id DESC LIMIT 1", (event,))

    def runs_of(self, event: str | None, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if event is not None:
            clauses.append("event = ?")
            params.append(event)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.dicts(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?", (*params, limit))

    def duration_stats(self, event: str, last_n: int = HISTORY_RUNS) -> dict[str, Any]:
        """count, p50, p90 (nearest rank, as the projection takes them) and max duration
        (seconds) of the event's last N successful runs."""
        durations = sorted(self.succeeded_durations([event], last_n).get(event, []))
        if not durations:
            return {"count": 0, "p50_s": None, "p90_s": None, "max_s": None}
        return {
            "count": len(durations),
            "p50_s": round(nearest_rank(durations, 0.5), 3),
            "p90_s": round(nearest_rank(durations, 0.9), 3),
            "max_s": round(durations[-1], 3),
        }

    def succeeded_durations(self, events: Sequence[str], last_n: int = HISTORY_RUNS) -> dict[str, list[float]]:
        """event -> the durations (seconds) of its last `last_n` succeeded runs, newest first;
        every named event gets a list. One statement per 500 events, each event's runs found
        through runs_event_ended (event, ended_at), newest first, stopping at `last_n`."""
        out: dict[str, list[float]] = {name: [] for name in events}
        took = self.dialect.seconds_between("r.started_at", "r.ended_at")
        for chunk, marks in in_chunks(list(out)):
            for event, seconds in self.rows(
                f"SELECT e.name, {took} FROM events e JOIN runs r ON r.id IN ("
                "SELECT x.id FROM runs x WHERE x.event = e.name AND x.ended_at IS NOT NULL "
                "AND x.state = 'succeeded' AND x.started_at IS NOT NULL ORDER BY x.ended_at DESC LIMIT ?) "
                f"WHERE e.name IN ({marks}) ORDER BY e.name, r.ended_at DESC",
                (last_n, *chunk),
            ):
                out[event].append(max(0.0, float(seconds)))
        return out

    def runs_ended_since(self, events: Sequence[str], since: datetime) -> list[dict[str, Any]]:
        """The named events' runs that ended at or after `since` (runs_event_ended), oldest first."""
        out: list[dict[str, Any]] = []
        for chunk, marks in in_chunks(list(events)):
            out += self.dicts(
                f"SELECT * FROM runs WHERE event IN ({marks}) AND ended_at IS NOT NULL AND ended_at >= ? ORDER BY id",
                (*chunk, iso(since)),
            )
        return sorted(out, key=lambda r: int(r["id"]))

    def runs_created(self, ids: Sequence[int], created_at: str) -> set[int]:
        """Which of `ids` are runs created at `created_at` (the rest were not inserted)."""
        out: set[int] = set()
        for chunk, marks in in_chunks(ids):
            out.update(
                r[0]
                for r in self.rows(
                    f"SELECT id FROM runs WHERE created_at = ? AND id IN ({marks})", (created_at, *chunk)
                )
            )
        return out

    def insert_runs(self, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
        """Insert runs (each a mapping with RUN_COLUMNS keys) in one transaction; True per row created."""
        created = []
        with self.transaction():
            for row in rows:
                cur = self.execute(insert_run_sql(), tuple(row.get(c) for c in RUN_COLUMNS))
                created.append(cur.rowcount == 1)
        return created
