"""`evman engines`: every engine of the database, what it holds and what it runs now."""

from __future__ import annotations

from typing import Any, Final

ENGINE_KEYS: Final = (
    "id",
    "host",
    "pid",
    "epoch",
    "state",
    "live",
    "tags",
    "started_at",
    "heartbeat_at",
    "lease_until",
    "stopped_at",
    "taken_over_by",
    "reason",
    "running",
)


def engine_list(store: Any) -> list[dict[str, Any]]:
    """The engines as the JSON contract has them: `running` a list of run ids, `tags` a list."""
    out = []
    for row in store.engines():
        item = {key: row.get(key) for key in ENGINE_KEYS}
        if row.get("live") is None:  # SQLite's one engine: live while its heartbeat is fresh
            from evman.console.mailbox import engine_is_live

            item["live"] = row.get("state") == "live" and engine_is_live(store)
        item["live"] = bool(item["live"])
        item["tags"] = [t for t in str(row.get("tags") or "").split(",") if t]
        item["running"] = [int(r) for r in str(row.get("running") or "").split(",") if r]
        out.append(item)
    return out


def render_engines(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no engine has run on this database yet (start one: evman --no-ui --db ...)"
    header = ("id", "host", "pid", "epoch", "state", "heartbeat", "lease until", "runs now")
    table = [header] + [
        (
            str(r["id"]),
            str(r["host"] or "-"),
            str(r["pid"] or "-"),
            str(r["epoch"] or "-"),
            ("live" if r["live"] else str(r["state"])) + (f" (by {r['taken_over_by']})" if r["taken_over_by"] else ""),
            _short(r["heartbeat_at"]),
            _short(r["lease_until"]),
            ", ".join(f"run:{i}" for i in r["running"][:6]) + (" ..." if len(r["running"]) > 6 else "") or "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    live = sum(1 for r in rows if r["live"])
    return "\n".join(lines + [f"{live} live engine(s)"])


def _short(stamp: str | None) -> str:
    """An ISO UTC time as HH:MM:SS UTC with its date when it is not today's."""
    if not stamp:
        return "-"
    return stamp[11:19] + "Z" if len(stamp) >= 19 else stamp
