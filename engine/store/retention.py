"""Housekeeping's statements: the oldest rows past their horizon, a batch at a time, through the
indexes that hold them in age order (runs_log_kept, runs_event_ended, requests_handled,
alerts_resolved, deliveries_attempted), so a pass costs what it deletes, not what is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from evman.engine.store.part import Part, Row, in_chunks

FINISHED: Final = "state NOT IN ('waiting', 'running')"


def _not_in(ids: Sequence[int]) -> tuple[str, list[int]]:
    """An `AND id NOT IN (...)` clause for a short list of kept ids (a few dozen per event)."""
    if not ids:
        return "", []
    return f" AND id NOT IN ({','.join('?' for _ in ids)})", list(ids)


class RetentionPart(Part):
    # -- what is kept ---------------------------------------------------------------------------

    def runs_after(self, event: str, after_id: int, limit: int) -> list[Row]:
        """(id, state, ended_at) of the event's runs with ids above `after_id`, in id order (runs_event)."""
        return self.rows(
            "SELECT id, state, ended_at FROM runs WHERE event = ? AND id > ? ORDER BY id LIMIT ?",
            (event, after_id, limit),
        )

    def ended_before(self, event: str, before: str) -> bool:
        """Whether any run of `event` ended before `before` (runs_event_ended: one probe)."""
        return (
            self.value(
                f"SELECT 1 FROM runs{self.dialect.indexed_by('runs_event_ended')} "
                "WHERE event = ? AND ended_at IS NOT NULL AND ended_at < ? LIMIT 1",
                (event, before),
            )
            is not None
        )

    def alerted_runs(self) -> set[int]:
        """Runs an open alert points at."""
        return {int(r[0]) for r in self.rows("SELECT run_id FROM alerts WHERE status = 'open' AND run_id IS NOT NULL")}

    def retained_events(self) -> list[Row]:
        """(name, spec) of every event that has runs: defined ones and retired ones alike."""
        return self.rows(
            "SELECT e.name, e.spec FROM events e WHERE EXISTS (SELECT 1 FROM runs r WHERE r.event = e.name)"
        )

    # -- logs -------------------------------------------------------------------------------------

    def expired_logs(
        self, event: str, before: str, kept: Sequence[int], limit: int, host: str | None = None
    ) -> list[Row]:
        """(id, log_path, host) of finished runs of `event` that ended before `before` whose log
        is not pruned yet, oldest first; `host`: only runs that ran there (or never started)."""
        skip, ids = _not_in(kept)
        on_host = "" if host is None else " AND (host = ? OR host IS NULL)"
        return self.rows(
            f"SELECT id, log_path, host FROM runs{self.dialect.indexed_by('runs_log_kept')} "
            f"WHERE event = ? AND log_pruned_at IS NULL AND ended_at IS NOT NULL AND ended_at < ? "
            f"AND {FINISHED}{on_host}{skip} ORDER BY ended_at LIMIT ?",
            (event, before, *([host] if host is not None else []), *ids, limit),
        )

    def mark_logs_pruned(self, rows: Sequence[tuple[int, str | None, str | None]], now: str) -> None:
        """Mark the runs' logs pruned and note each file in pruned_logs, in one transaction,
        before any file is unlinked: a pass killed after this commit leaves every run's log
        either on disk or marked, and the next pass unlinks what pruned_logs still lists."""
        with self.transaction():
            for chunk, marks in in_chunks([r[0] for r in rows]):
                self.execute(
                    f"UPDATE runs SET log_pruned_at = ? WHERE id IN ({marks}) AND log_pruned_at IS NULL", (now, *chunk)
                )
            self.execute_many(
                "INSERT INTO pruned_logs (run_id, log_path, host) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [r for r in rows if r[1]],
            )

    def logs_to_unlink(self, host: str | None, limit: int) -> list[Row]:
        """(run_id, log_path) noted in pruned_logs and not yet unlinked (`host`: only this host's)."""
        where = "" if host is None else " WHERE host = ? OR host IS NULL"
        return self.rows(
            f"SELECT run_id, log_path FROM pruned_logs{where} ORDER BY run_id LIMIT ?",
            (*([host] if host is not None else []), limit),
        )

    def logs_unlinked(self, run_ids: Sequence[int]) -> None:
        with self.transaction():
            for chunk, marks in in_chunks(list(run_ids)):
                self.execute(f"DELETE FROM pruned_logs WHERE run_id IN ({marks})", chunk)

    # -- rows -------------------------------------------------------------------------------------

    def expired_runs(self, event: str, before: str, kept: Sequence[int], limit: int) -> list[Row]:
        """(id, log_path, host, log_pruned_at) of finished runs of `event` that ended before
        `before`, not kept; oldest first."""
        skip, ids = _not_in(kept)
        return self.rows(
            f"SELECT id, log_path, host, log_pruned_at FROM runs{self.dialect.indexed_by('runs_event_ended')} "
            f"WHERE event = ? AND ended_at IS NOT NULL AND ended_at < ? AND {FINISHED}{skip} ORDER BY ended_at LIMIT ?",
            (event, before, *ids, limit),
        )

    def delete_runs_noting_logs(self, rows: Sequence[Row]) -> int:
        """Delete these finished runs (never an active one), noting in pruned_logs the log of each
        whose log was not pruned yet, in one transaction; how many runs were deleted."""
        with self.transaction():
            self.execute_many(
                "INSERT INTO pruned_logs (run_id, log_path, host) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(r[0], r[1], r[2]) for r in rows if r[1] and r[3] is None],
            )
            return sum(
                self.execute(f"DELETE FROM runs WHERE id IN ({marks}) AND {FINISHED}", chunk).rowcount
                for chunk, marks in in_chunks([r[0] for r in rows])
            )

    def delete_handled_requests(self, before: str, limit: int) -> int:
        with self.transaction():
            return int(
                self.execute(
                    "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE handled_at IS NOT NULL "
                    "AND handled_at < ? ORDER BY handled_at LIMIT ?)",
                    (before, limit),
                ).rowcount
            )

    def delete_resolved_alerts(self, before: str, limit: int) -> tuple[int, int]:
        """(alerts, deliveries) deleted: resolved alerts older than `before`, with their deliveries."""
        with self.transaction():
            ids = [
                int(r[0])
                for r in self.rows(
                    "SELECT id FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ? AND status != 'open' "
                    "ORDER BY resolved_at LIMIT ?",
                    (before, limit),
                )
            ]
            if not ids:
                return 0, 0
            marks = ",".join("?" for _ in ids)
            deliveries = self.execute(f"DELETE FROM deliveries WHERE alert_id IN ({marks})", ids).rowcount
            alerts = self.execute(f"DELETE FROM alerts WHERE id IN ({marks})", ids).rowcount
            return int(alerts), int(deliveries)

    def delete_old_deliveries(self, before: str, limit: int) -> int:
        """Deliveries attempted before `before`, whatever their alert (an open alert whose route is
        down keeps retrying for as long as it is open: its attempts must not pile up forever)."""
        with self.transaction():
            return int(
                self.execute(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE attempted_at < ? "
                    "ORDER BY attempted_at LIMIT ?)",
                    (before, limit),
                ).rowcount
            )

    # -- what a dry run would do ----------------------------------------------------------------

    def count_expired(
        self, event: str, before_logs: str, before_runs: str, kept_logs: Sequence[int], kept: Sequence[int]
    ) -> tuple[int, int]:
        """(logs, runs) of `event` a pass would delete now (runs: whatever their log's state)."""
        skip, ids = _not_in(kept_logs)
        logs = self.value(
            f"SELECT count(*) FROM runs{self.dialect.indexed_by('runs_log_kept')} WHERE event = ? "
            f"AND log_pruned_at IS NULL AND ended_at IS NOT NULL AND ended_at < ? AND {FINISHED}{skip}",
            (event, before_logs, *ids),
        )
        skip, ids = _not_in(kept)
        runs = self.value(
            f"SELECT count(*) FROM runs{self.dialect.indexed_by('runs_event_ended')} WHERE event = ? "
            f"AND ended_at IS NOT NULL AND ended_at < ? AND {FINISHED}{skip}",
            (event, before_runs, *ids),
        )
        return int(logs or 0), int(runs or 0)

    def count_old_rows(self, requests_before: str, alerts_before: str) -> dict[str, int]:
        def count(sql: str, params: tuple[Any, ...]) -> int:
            return int(self.value(sql, params) or 0)

        return {
            "requests": count(
                "SELECT count(*) FROM requests WHERE handled_at IS NOT NULL AND handled_at < ?", (requests_before,)
            ),
            "alerts": count(
                "SELECT count(*) FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ? AND status != 'open'",
                (alerts_before,),
            ),
            "deliveries": count(
                "SELECT count(*) FROM deliveries WHERE attempted_at < ? OR alert_id IN (SELECT id FROM alerts "
                "WHERE resolved_at IS NOT NULL AND resolved_at < ? AND status != 'open')",
                (alerts_before, alerts_before),
            ),
        }

    # -- once across a fleet, and the space ---------------------------------------------------------

    def claim_housekeeping(self, now: str, next_at: str) -> bool:
        """Take the next rows pass: True for one engine of a fleet per interval (a compare-and-set
        on settings.housekeeping_at, the time the next pass may start)."""
        with self.transaction():
            return bool(
                self.execute(
                    "UPDATE settings SET value = ? WHERE key = 'housekeeping_at' AND (value IS NULL OR value <= ?)",
                    (next_at, now),
                ).rowcount
            )

    def free_pages(self) -> tuple[int, int, bool]:
        """SQLite: (free pages, all pages, whether incremental vacuum can give them back)."""
        if self.dialect.name != "sqlite":
            return 0, 0, False
        free = int(self.value("PRAGMA freelist_count") or 0)
        pages = int(self.value("PRAGMA page_count") or 0)
        return free, pages, int(self.value("PRAGMA auto_vacuum") or 0) == 2
