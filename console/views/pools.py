"""`evman pools` and the console's pools screen: each pool's size, holders and line (the
runs ready but for its slots, in the order they get them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evman.engine.store import Store


def pool_rows(store: Store, now: datetime) -> list[dict[str, Any]]:
    """One dict per pool: name, size, held, holders[], waiting[] (in line order)."""
    from evman.engine.clock import parse_iso
    from evman.engine.coordination.pools import Claimant, in_line, parse_uses
    from evman.engine.definitions import spec_from_json

    claimants = store.pool_claimants()
    priorities: dict[str, int] = {}
    for row in store.events_by_name(sorted({str(r["event"]) for r in claimants})):
        priorities[str(row["name"])] = spec_from_json(row["spec"]).priority
    by_id = {int(r["id"]): r for r in claimants}
    line = in_line(
        [
            Claimant(
                int(r["id"]),
                str(r["event"]),
                parse_uses(r["pools"]),
                False,
                priorities.get(str(r["event"]), 0),
                parse_iso(r["scheduled_for"]),
                "backfill" in (r["flags"] or "").split(","),
            )
            for r in claimants
            if r["state"] == "waiting"
        ],
        now,
    )
    return [_pool(name, size, claimants, line, by_id) for name, size in store.pool_sizes().items()]


def _pool(name: str, size: int, claimants: list[Any], line: list[Any], by_id: dict[int, Any]) -> dict[str, Any]:
    from evman.engine.coordination.pools import parse_uses

    holders = [
        {"run_id": int(r["id"]), "event": r["event"], "slots": parse_uses(r["pools"])[name], "since": r["started_at"]}
        for r in claimants
        if r["state"] == "running" and name in parse_uses(r["pools"])
    ]
    waiting = [
        {
            "run_id": c.run_id,
            "event": c.event,
            "slots": c.uses[name],
            "priority": c.priority,
            "due_at": by_id[c.run_id]["scheduled_for"],
            "reason": by_id[c.run_id]["waiting_reason"],
        }
        for c in line
        if name in c.uses
    ]
    return {
        "name": name,
        "size": size,
        "held": sum(h["slots"] for h in holders),
        "holders": holders,
        "waiting": waiting,
    }


def render_pools(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no pools ([pools] NAME = N in the definitions makes one)"
    lines: list[str] = []
    for pool in rows:
        lines.append(f"{pool['name']}: {pool['held']} of {pool['size']} held, {len(pool['waiting'])} waiting")
        lines += [f"  holds  run {h['run_id']} {h['event']} ({h['slots']} slot(s))" for h in pool["holders"]]
        lines += [
            f"  {i:>4}.  run {w['run_id']} {w['event']} ({w['slots']} slot(s), priority {w['priority']})"
            for i, w in enumerate(pool["waiting"], 1)
        ]
    return "\n".join(lines)
