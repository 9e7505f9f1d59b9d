"""Groups in the console's events table: a line per group (folded: its events hidden; unfolded:
its events below it), whose state is the group's: running, failed, waiting, held, all succeeded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from evman.console.views.screen_rows import BAD_STATES, STATE_SYMBOLS, STATE_TONES, Cell, shown_state

PREFIX: Final = "group:"
"""A group's line is keyed "group:NAME" (event names never hold a colon)."""
NOTE: Final = "{key}: enter or g folds and unfolds it; t triggers its first events, h holds all, u releases all"
FOLDED: Final = "▸"
UNFOLDED: Final = "▾"


def key_of(group: str) -> str:
    return PREFIX + group


def lines_of(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The group lines that show these events' groups (to draw again when they change)."""
    return {key_of(str(r["group_name"])) for r in rows if r.get("group_name")}


def is_group_key(key: str | None) -> bool:
    return key is not None and key.startswith(PREFIX)


def group_state(members: Sequence[Mapping[str, Any]]) -> str:
    """running if one runs; failed if one's last run failed; waiting; held if all are; succeeded
    if every one's last run succeeded; else idle."""
    states = [shown_state(dict(m)) for m in members]
    for state in ("running",):
        if state in states:
            return state
    if any(s in BAD_STATES for s in states):
        return "failed"
    if "waiting" in states:
        return "waiting"
    if states and all(s == "held" for s in states):
        return "held"
    if states and all(s == "succeeded" for s in states):
        return "succeeded"
    return "idle"


def ordered(names: Sequence[str], rows: Mapping[str, Mapping[str, Any]], unfolded: set[str]) -> list[str]:
    """The table's keys: each group's line where its first event (in `names`' order) would be,
    its events right after it when unfolded; events of no group as they come."""
    members: dict[str, list[str]] = {}
    for name in names:
        group = rows[name].get("group_name")
        if group:
            members.setdefault(str(group), []).append(name)
    out: list[str] = []
    placed: set[str] = set()
    for name in names:
        group = rows[name].get("group_name")
        if not group:
            out.append(name)
        elif group not in placed:
            placed.add(str(group))
            out.append(key_of(str(group)))
            if group in unfolded:
                out += members[str(group)]
    return out


def members_of(group: str, rows: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows.values() if row.get("group_name") == group]


def group_cells(group: str, members: Sequence[Mapping[str, Any]], *, unfolded: bool) -> dict[str, Cell]:
    state = group_state(members)
    counts = {s: sum(1 for m in members if shown_state(dict(m)) == s) for s in ("running", "waiting", "failed")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or f"all {len(members)} {state}"
    alerts = sum(int(m.get("open_alerts") or 0) for m in members)
    shown = "all succeeded" if state == "succeeded" else state
    return {
        "state": (f"{STATE_SYMBOLS.get(state, ' ')} {shown}", STATE_TONES.get(state, "plain")),
        "name": (f"{UNFOLDED if unfolded else FOLDED} {group} ({len(members)})", "plain"),
        "next": ("", "muted"),
        "last": ("", "muted"),
        "runtime": ("", "muted"),
        "window": ("", "muted"),
        "alerts": (f"⚠ {alerts}", "bad") if alerts else ("", "muted"),
        "slack": ("", "muted"),
        "driver": ("", "muted"),
        "why": (f"group: {said}; g folds or unfolds it", "muted"),
    }
