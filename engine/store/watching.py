"""What the metrics endpoint reads at scrape time: a few small, indexed counts."""

from __future__ import annotations

from typing import Any

from evman.engine.store.part import Part


class WatchPart(Part):
    def watch_numbers(self, now: str) -> dict[str, Any]:
        """open_alerts {kind: n} (alerts_open), backlog (alerts_pending), engines {state: n},
        heartbeat_at (the newest heartbeat of a live engine)."""
        numbers: dict[str, Any] = {
            "open_alerts": {
                str(k): int(n)
                for k, n in self.rows("SELECT kind, count(*) FROM alerts WHERE status = 'open' GROUP BY kind")
            },
            "backlog": int(
                self.value(
                    "SELECT count(*) FROM alerts WHERE pending = 1 AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
                    (now,),
                )
                or 0
            ),
        }
        numbers.update(self._engine_numbers())
        return numbers

    def _engine_numbers(self) -> dict[str, Any]:
        if self.several_engines:
            states = {
                str(s): int(n)
                for s, n in self.rows("SELECT state, count(*) FROM engines WHERE taken_over_at IS NULL GROUP BY state")
            }
            beat = self.value("SELECT max(heartbeat_at) FROM engines WHERE state = 'live'")
            return {"engines": states, "heartbeat_at": beat}
        row = self.row("SELECT heartbeat_at, stopped_at FROM engine WHERE id = 1")
        if row is None:
            return {"engines": {}, "heartbeat_at": None}
        return {"engines": {"live" if row[1] is None else "stopped": 1}, "heartbeat_at": row[0]}

    def active_run_facts(self) -> list[dict[str, Any]]:
        """Every waiting and running run (runs_active) with its event's spec: what `evman engines
        --check` judges stuck."""
        return self.dicts(
            "SELECT r.id, r.event, r.state, r.pid, r.started_at, r.due_by, e.spec FROM runs r "
            "LEFT JOIN events e ON e.name = r.event WHERE r.state IN ('waiting', 'running') ORDER BY r.id"
        )
