"""The events table: every event, one line each, drawn only when on screen (see LineTable)."""

from __future__ import annotations

from typing import Any, Final

from evman.console.widgets.line_table import Column, LineTable

COLUMNS: Final = (
    Column("state", "State", 11),
    Column("name", "Event", 12, fit=40),
    Column("next", "Next", 7),
    Column("last", "Last run", 9),
    Column("runtime", "Runtime", 9),
    Column("window", "Window", 8),
    Column("alerts", "⚠", 3),
    Column("slack", "Slack", 10),
    Column("driver", "Driver", 10, yields=True),
    Column("why", "Why", 12, fill=True),
)
"""The name grows to fit the names; "why" takes the room left. Driver and why come last: in
80 columns they scroll off, not the names. Slack: deadline - p50 finish, for events with a
deadline, and its probability of missing it (the plan view, `p`, has the rest)."""


class EventTable(LineTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(COLUMNS, **kwargs)
