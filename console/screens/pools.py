"""`P`: each pool, the runs that hold its slots, and the runs waiting for them in line order."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from textual.binding import BindingType

from evman.console.screens.base import back_keys
from evman.console.screens.listing import ListingScreen
from evman.console.views import screen_rows
from evman.console.views.pools import pool_rows
from evman.console.widgets.line_table import Column
from evman.engine.store import Store

COLUMNS: Final = (
    Column("pool", "Pool", 10, fit=30),
    Column("role", "", 9),
    Column("run", "Run", 10),
    Column("event", "Event", 12, fit=40),
    Column("slots", "Slots", 5),
    Column("since", "Since", 8),
    Column("why", "Why", 12, fill=True),
)


class PoolsScreen(ListingScreen):
    BINDINGS: ClassVar[list[BindingType]] = back_keys()
    HEADING = "Pools: who holds each one's slots, and who waits for them (in line order)"
    COLUMNS = COLUMNS
    TABLE_ID = "pools"
    REFRESH_EVERY_S = 5.0

    def read(self, store: Store) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for pool in pool_rows(store, self.services.now()):
            rows.append({"id": f"pool:{pool['name']}", "kind": "pool", "event": None, **pool})
            rows += [
                {"id": f"{pool['name']}:holds:{h['run_id']}", "kind": "holds", "pool": pool["name"], **h}
                for h in pool["holders"]
            ]
            rows += [
                {"id": f"{pool['name']}:waits:{w['run_id']}", "kind": "waits", "pool": pool["name"], "place": i, **w}
                for i, w in enumerate(pool["waiting"], 1)
            ]
        return rows

    def cells(self, row: dict[str, Any]) -> dict[str, tuple[str, str]]:
        now = self.services.now()
        if row["kind"] == "pool":
            busy = "bad" if row["held"] >= row["size"] and row["waiting"] else "plain"
            blank = {c.key: ("", "muted") for c in COLUMNS}
            return {
                **blank,
                "pool": (row["name"], "plain"),
                "role": (f"{row['held']} of {row['size']}", busy),
                "why": (f"{len(row['waiting'])} waiting", "muted"),
            }
        holds = row["kind"] == "holds"
        return {
            "pool": ("", "muted"),
            "role": ("holds", "active") if holds else (f"#{row['place']} in line", "wait"),
            "run": (f"run:{row['run_id']}", "plain"),
            "event": (str(row["event"]), "plain"),
            "slots": (str(row["slots"]), "plain"),
            "since": (screen_rows.since(row["since"] if holds else row["due_at"], now), "muted"),
            "why": ("" if holds else str(row.get("reason") or ""), "muted"),
        }

    def selected_event(self) -> str | None:
        row = self.selected_row()
        return None if row is None or row["event"] is None else str(row["event"])

    def selected_run(self) -> int | None:
        row = self.selected_row()
        return None if row is None or row["kind"] == "pool" else int(row["run_id"])

    def note(self, row: dict[str, Any] | None) -> str:
        if row is None:
            return "no pools: [pools] NAME = N in the definitions makes one" if self.loaded else ""
        if row["kind"] == "pool":
            return f"pool {row['name']}: {row['held']} of {row['size']} slots held, {len(row['waiting'])} waiting"
        if row["kind"] == "holds":
            return f"run {row['run_id']} of {row['event']} holds {row['slots']} slot(s) of {row['pool']}"
        return (
            f"run {row['run_id']} of {row['event']}: #{row['place']} in line for {row['pool']} · {row['reason'] or ''}"
        )
