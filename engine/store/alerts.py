"""Alerts and their delivery attempts: what the tick raises and the notifier sends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from evman.engine.clock import iso
from evman.engine.store.part import Part, Row, in_chunks

UPSERT_ALERT = (
    "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event, kind) WHERE status = 'open' DO UPDATE SET "
    "count = alerts.count + 1, updated_at = excluded.updated_at, run_id = excluded.run_id, "
    "message = excluded.message"
)
"""An alert row; while one of (event, kind) is open, it is added to instead of paging anew."""

_INSERT_DELIVERY = (
    "INSERT INTO deliveries (alert_id, attempted_at, route, target, outcome, error, page) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_CLAIM_DUE = (
    "WITH due AS (SELECT id, next_attempt_at FROM alerts WHERE pending = 1 AND (next_attempt_at IS NULL "
    "OR next_attempt_at <= ?) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) "
    "UPDATE alerts SET next_attempt_at = ? FROM due WHERE alerts.id = due.id "
    "RETURNING alerts.*, due.next_attempt_at AS claimed_from"
)
"""Due alerts claimed in one statement (PostgreSQL): rows another notifier is claiming now are
skipped, and a committed claim's next_attempt_at is in the future, so no other takes it."""


class AlertsPart(Part):
    def open_alert(self, event: str, kind: str) -> Row | None:
        return self.row("SELECT * FROM alerts WHERE event = ? AND kind = ? AND status = 'open'", (event, kind))

    def open_alert_kinds(self, events: Iterable[str]) -> dict[str, set[str]]:
        """event -> kinds of its open alerts, for each of `events` (an empty set when none)."""
        names = list(events)
        out: dict[str, set[str]] = {name: set() for name in names}
        for chunk, marks in in_chunks(names):
            for event, kind in self.rows(
                f"SELECT event, kind FROM alerts WHERE status = 'open' AND event IN ({marks})", chunk
            ):
                out[event].add(kind)
        return out

    def open_alerts_of(self, event: str) -> list[dict[str, Any]]:
        return self.dicts("SELECT * FROM alerts WHERE event = ? AND status = 'open' ORDER BY id", (event,))

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        return self.one_dict("SELECT * FROM alerts WHERE id = ?", (alert_id,))

    def alerts(self, *, event: str | None = None, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        clauses, params = [], []
        if event is not None:
            clauses.append("event = ?")
            params.append(event)
        if open_only:
            clauses.append("status = 'open'")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.dicts(
            f"SELECT * FROM alerts {where} ORDER BY (status = 'open' AND acknowledged_at "
            f"IS NULL) DESC, id DESC LIMIT ?",
            (*params, limit),
        )

    def deliveries_of(self, alert_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in alert_ids}
        for chunk, marks in in_chunks(alert_ids):
            for r in self.rows(f"SELECT * FROM deliveries WHERE alert_id IN ({marks}) ORDER BY id", chunk):
                out[int(r["alert_id"])].append(dict(r))
        return out

    # -- the notifier's side -----------------------------------------------------

    def due_alerts(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return self.dicts(
            "SELECT * FROM alerts WHERE pending = 1 AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            "ORDER BY id LIMIT ?",
            (iso(now), limit),
        )

    def claim_due_alerts(self, now: datetime, until: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Several notifiers: the due alerts, taken in one statement for this round. Each one's
        next_attempt_at moves to `until` (the claim's lease; the others skip it until then) and
        its row carries the value it had as `claimed_from`. Recording the round sets the real
        next time; a notifier that dies leaves the alert due again at `until`. One notifier
        (SQLite): due_alerts, nothing moved."""
        if not self.several_engines:
            return self.due_alerts(now, limit)
        return sorted(self.dicts(_CLAIM_DUE, (iso(now), limit, iso(until))), key=lambda a: int(a["id"]))

    def renew_alert_claims(self, ids: Sequence[int], held: datetime, until: datetime) -> int:
        """Move the lease of the claims still held (next_attempt_at = `held`) to `until`; how many."""
        count = 0
        for chunk, marks in in_chunks(ids):
            count += int(
                self.execute(
                    f"UPDATE alerts SET next_attempt_at = ? WHERE id IN ({marks}) AND "
                    "pending = 1 AND next_attempt_at = ?",
                    (iso(until), *chunk, iso(held)),
                ).rowcount
            )
        return count

    def release_alert_claims(self, claims: Sequence[tuple[int, str | None]], held: datetime) -> None:
        """Give claimed alerts back as they were (alert id, its claimed_from), unless changed since."""
        self.execute_many(
            "UPDATE alerts SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ?",
            [(was, alert_id, iso(held)) for alert_id, was in claims],
        )

    def next_alert_at(self) -> str | None:
        value = self.value("SELECT min(coalesce(next_attempt_at, '')) FROM alerts WHERE pending = 1")
        return None if value is None else str(value)

    def _change_alert(self, alert_id: int, changes: Mapping[str, Any]) -> None:
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            self.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*changes.values(), alert_id))

    def sent_targets(self, alert_id: int, page: int) -> set[tuple[str | None, str | None]]:
        """(route, target) pairs that already took page `page` of the alert."""
        return {
            (r[0], r[1])
            for r in self.rows(
                "SELECT route, target FROM deliveries WHERE alert_id = ? AND page = ? AND outcome = 'sent'",
                (alert_id, page),
            )
        }

    def record_attempts(self, updates: Sequence[tuple[int, Sequence[Mapping[str, Any]], Mapping[str, Any]]]) -> None:
        """The notifier's bookkeeping, in one transaction: for each (alert_id, deliveries, alert
        changes), insert the deliveries rows (attempted_at, route, target, outcome, error, page)
        and update the alert. An alert acknowledged meanwhile stays pending = 0 whatever the
        changes say: an ack always wins over a scheduled repeat."""
        with self.transaction():
            for alert_id, rows, changes in updates:
                self.execute_many(
                    _INSERT_DELIVERY,
                    [
                        (
                            alert_id,
                            r["attempted_at"],
                            r.get("route"),
                            r.get("target"),
                            r["outcome"],
                            r.get("error"),
                            r.get("page"),
                        )
                        for r in rows
                    ],
                )
                self._change_alert(alert_id, changes)
                self.execute("UPDATE alerts SET pending = 0 WHERE id = ? AND acknowledged_at IS NOT NULL", (alert_id,))

    def raise_delivery_alert(
        self, event: str, run_id: int | None, route: str | None, message: str, now: datetime
    ) -> None:
        """Open a `delivery` alert for `event`, or add to the open one (same de-duplication as the engine's)."""
        with self.transaction():
            self.execute(
                "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
                "VALUES ('delivery', ?, ?, ?, ?, ?, ?) ON CONFLICT(event, kind) WHERE status = 'open' "
                "DO UPDATE SET count = alerts.count + 1, updated_at = excluded.updated_at, "
                "message = excluded.message",
                (event, run_id, route, message, iso(now), iso(now)),
            )

    def resolve_alerts(self, event: str, kind: str, now: datetime) -> int:
        """Resolve the open alert of (event, kind), if any; how many rows changed."""
        with self.transaction():
            cur = self.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = ? "
                "WHERE event = ? AND kind = ? AND status = 'open'",
                (iso(now), event, kind),
            )
            return int(cur.rowcount)
