"""What the CLI and the console read: events with the run they show, attention lists, watch marks.

Each is an indexed query; the console's live refresh reads only the events that changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from evman.engine.clock import iso
from evman.engine.store.part import Part, in_chunks


class ReadsPart(Part):
    def _shown_run(self) -> str:
        """The run an event's row shows: its active run, else its latest that was not skipped (a
        skipped occurrence says nothing of how the event is doing), else its latest."""
        return (
            "coalesce((SELECT max(id) FROM runs"
            + self.dialect.indexed_by("runs_event_active")
            + " WHERE event = e.name AND state IN ('waiting', 'running')), "
            "(SELECT id FROM runs WHERE event = e.name AND state != 'skipped' ORDER BY id DESC LIMIT 1), "
            "(SELECT max(id) FROM runs WHERE event = e.name))"
        )

    def list_events(
        self,
        *,
        name_like: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_pruned: bool = False,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events with their latest run's state and unacknowledged alert count, by name."""
        clauses: list[str] = []
        params: list[Any] = []
        if name is not None:
            clauses.append("e.name = ?")
            params.append(name)
        if not include_pruned:
            clauses.append("e.defined = 1")
        if name_like:
            clauses.append("e.name LIKE ?")
            params.append(f"%{name_like}%")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        lim = "" if limit is None else f"LIMIT {int(limit)} OFFSET {int(offset)}"
        return self.dicts(
            f"""
            SELECT e.name, e.kind, e.schedule, e.timezone, e.driver, e.requires, e.held,
                   e.next_fire_at, e.defined, e.spec, e.group_name,
                   r.id AS run_id, r.state AS run_state, r.started_at, r.ended_at, r.exit_code,
                   r.scheduled_for, r.waiting_reason, r.due_by, r.late_at, r.flags, r.reason,
                   (SELECT count(*) FROM alerts a WHERE a.event = e.name AND a.status = 'open'
                        AND a.acknowledged_at IS NULL) AS open_alerts
            FROM events e
            LEFT JOIN runs r ON r.id = {self._shown_run()}
            {where} ORDER BY e.name {lim}""",
            params,
        )

    def event_of(self, target: str) -> str | None:
        """The event a request target names: an event name, run:N or alert:N."""
        kind, _, number = target.partition(":")
        if kind in ("run", "alert") and number.isdigit():
            table = "runs" if kind == "run" else "alerts"
            value = self.value(f"SELECT event FROM {table} WHERE id = ?", (int(number),))
            return None if value is None else str(value)
        return target

    # -- the console (see console/app/evman_app.py) ------------------------------------------------

    def console_events(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One row per defined event for the console's table, by name: the event, its latest
        run (runs_event index), its runtime bounds and its unacknowledged open alerts.

        `names`: only these events (in chunks of 500); None: every defined event."""
        if names is None:
            return self._console_events("", ())
        out: list[dict[str, Any]] = []
        for chunk, marks in in_chunks(sorted(set(names))):
            out += self._console_events(f"AND e.name IN ({marks})", chunk)
        return out

    def console_events_page(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        """The console's rows of up to `limit` defined events whose names sort after `after`
        (None: from the first), by name: a screen's worth first, the rest a page at a time."""
        return self._console_events(f"AND e.name > ? ORDER BY e.name LIMIT {int(limit)}", (after or "",), order="")

    def _console_events(
        self, where: str, params: Sequence[Any], order: str = "ORDER BY e.name"
    ) -> list[dict[str, Any]]:
        runtime = self.dialect.json_number
        return self.dicts(
            f"""
            SELECT e.name, e.schedule, e.driver, e.requires, e.held, e.held_by, e.next_fire_at, e.group_name,
                   {runtime("e.spec", "runtime", "min_s")} AS runtime_min_s,
                   {runtime("e.spec", "runtime", "max_s")} AS runtime_max_s,
                   r.id AS run_id, r.state AS run_state, r.trigger, r.scheduled_for, r.started_at,
                   r.ended_at, r.exit_code, r.reason, r.waiting_reason, r.due_by, r.late_at, r.flags,
                   (SELECT count(*) FROM alerts a WHERE a.event = e.name AND a.status = 'open'
                        AND a.acknowledged_at IS NULL) AS open_alerts
            FROM events e
            LEFT JOIN runs r ON r.id = {self._shown_run()}
            WHERE e.defined = 1 {where} {order}""",
            tuple(params),
        )

    def last_finished_runs(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """name -> its most recently ended run (not skipped), for events whose latest run is
        still active (runs_event_ended index, one seek per name)."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            row = self.one_dict(
                "SELECT id, state, started_at, ended_at, exit_code FROM runs "
                "WHERE event = ? AND ended_at IS NOT NULL AND state != 'skipped' "
                "ORDER BY ended_at DESC LIMIT 1",
                (name,),
            )
            if row is not None:
                out[name] = row
        return out

    def watch_marks(self, *, full: bool = True) -> dict[str, Any]:
        """What an attached console compares between two looks to find the events another
        connection changed: the newest run id, the active runs (runs_active) and open alerts
        (alerts_open) with the columns that change, the held events, the definitions version.
        `full=False`: the definitions version only."""
        marks: dict[str, Any] = {
            "defs_version": int(self.value("SELECT value FROM settings WHERE key = 'defs_version'") or 0)
        }
        if not full:
            return marks
        marks["max_run_id"] = int(self.value("SELECT coalesce(max(id), 0) FROM runs"))
        marks["active"] = {
            r[0]: tuple(r[1:])
            for r in self.rows(
                "SELECT id, event, state, waiting_reason, flags, pid FROM runs WHERE state IN ('waiting', 'running')"
            )
        }
        marks["alerts"] = {
            r[0]: tuple(r[1:])
            for r in self.rows("SELECT id, event, count, acknowledged_at FROM alerts WHERE status = 'open'")
        }
        marks["held"] = {r[0] for r in self.rows("SELECT name FROM events WHERE held = 1")}
        return marks

    def events_with_runs_after(self, run_id: int, limit: int = 5000) -> set[str]:
        """Events of the runs created after `run_id` (a rowid range scan)."""
        return {r[0] for r in self.rows("SELECT event FROM runs WHERE id > ? ORDER BY id LIMIT ?", (run_id, limit))}

    def attention_runs(self, now: datetime, *, missed_since: datetime, scan_runs: int = 50_000) -> list[dict[str, Any]]:
        """Runs that need the driver: every waiting or running run (runs_active), with its
        event's runtime max, and the missed runs that ended after `missed_since` among the
        newest `scan_runs` runs (a bounded rowid scan, so 1,000,000 runs cost the same as 50,000).
        The caller decides which active runs are late, overdue or over their maximum."""
        runtime_max = self.dialect.json_number("e.spec", "runtime", "max_s")
        active = self.dicts(
            f"SELECT r.*, {runtime_max} AS runtime_max_s FROM runs r "
            "LEFT JOIN events e ON e.name = r.event WHERE r.state IN ('waiting', 'running') "
            "ORDER BY r.id"
        )
        floor = int(self.value("SELECT coalesce(max(id), 0) FROM runs")) - scan_runs
        missed = self.dicts(
            "SELECT *, NULL AS runtime_max_s FROM runs WHERE id > ? AND state = 'missed' "
            "AND ended_at >= ? ORDER BY id DESC LIMIT 500",
            (floor, iso(missed_since)),
        )
        return active + missed
