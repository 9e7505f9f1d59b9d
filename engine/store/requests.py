"""The `requests` mailbox: rows other programs insert and the engine answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from evman.engine.clock import iso
from evman.engine.store.part import Part, Row, in_chunks


class RequestsPart(Part):
    def add_request(
        self,
        verb: str,
        target: str,
        *,
        args: Mapping[str, Any] | None = None,
        requested_by: str | None = None,
        dedupe_key: str | None = None,
        now: datetime | None = None,
    ) -> int:
        with self.transaction():
            cur = self.execute(
                "INSERT INTO requests (verb, target, args, requested_by, dedupe_key, requested_at) "
                f"VALUES (?, ?, ?, ?, ?, coalesce(?, {self.dialect.now_iso})) RETURNING id",
                (verb, target, None if args is None else json.dumps(args), requested_by, dedupe_key, iso(now)),
            )
            return int(cur.fetchall()[0][0])

    def open_requests(self, limit: int = 1000) -> list[Row]:
        return self.rows("SELECT * FROM requests WHERE handled_at IS NULL ORDER BY id LIMIT ?", (limit,))

    def claim_requests(self, owner: Any = None, limit: int = 1000) -> list[Row]:
        """The open requests this engine answers, in id order (several engines: those routed to
        it or to none, each locked for it until its tick commits)."""
        return self.open_requests(limit)

    def request(self, request_id: int) -> dict[str, Any] | None:
        return self.one_dict("SELECT * FROM requests WHERE id = ?", (request_id,))

    def dedupe_holder(self, key: str, request_id: int) -> int | None:
        """The request that acts on `key`: `request_id` itself, or the one before it that did (a
        second row with the key is not acted on again). SQLite has one writer at a time, so ids
        are in commit order and the oldest row holds the key. None: another engine is deciding
        the key this moment (several engines, fleet.py); look again at the next tick."""
        value = self.value(
            "SELECT id FROM requests WHERE dedupe_key = ? AND id < ? ORDER BY id LIMIT 1", (key, request_id)
        )
        return request_id if value is None else int(value)

    def pending_requests(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The named requests that the engine has answered (handled_at set)."""
        out: list[dict[str, Any]] = []
        for chunk, marks in in_chunks(ids):
            out += self.dicts(
                f"SELECT id, verb, target, handled_at, outcome, detail FROM requests "
                f"WHERE id IN ({marks}) AND handled_at IS NOT NULL",
                chunk,
            )
        return out
