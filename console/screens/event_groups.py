"""The events screen's groups: each group's line (folded or unfolded) and its keys. A mixin of
EventsScreen: it keeps which events each group has, and `g` (or enter on a group's line)
folds or unfolds one; t, h and u on a group's line name the whole group (group:NAME)."""

from __future__ import annotations

from typing import Any

from evman.console.views import groups
from evman.console.widgets.event_table import EventTable
from evman.engine.verbs import Verb


class GroupLines:
    rows: dict[str, dict[str, Any]]

    unfolded: set[str]
    """The groups whose events are shown below their line (the others are folded)."""
    members: dict[str, set[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unfolded = set()
        self.members = {}

    @property
    def table(self) -> EventTable:
        raise NotImplementedError

    def place_in_group(self, name: str, row: dict[str, Any]) -> None:
        """Keep each group's events (a group's line reads only them)."""
        for members in self.members.values():
            members.discard(name)
        if row.get("group_name"):
            self.members.setdefault(str(row["group_name"]), set()).add(name)

    def group_line(self, key: str) -> dict[str, tuple[str, str]]:
        group = key.removeprefix(groups.PREFIX)
        members = [self.rows[m] for m in sorted(self.members.get(group, ())) if m in self.rows]
        return groups.group_cells(group, members, unfolded=group in self.unfolded)

    def target_for(self, verb: Verb) -> str | None:
        """On a group's line, a verb that takes group:NAME (trigger, hold, release) names the
        whole group; elsewhere what the screen names."""
        key = self.table.selected_key()
        if groups.is_group_key(key) and verb.takes("group"):
            return str(key)
        return super().target_for(verb)  # type: ignore[misc, no-any-return]

    def action_fold(self) -> None:
        """Fold or unfold the selected group (or the group of the selected event)."""
        key = self.table.selected_key() or ""
        group = (
            key.removeprefix(groups.PREFIX) if groups.is_group_key(key) else self.rows.get(key, {}).get("group_name")
        )
        if not group:
            self.notify("Select a group (or an event of one) first.", severity="warning")  # type: ignore[attr-defined]
            return
        self.unfolded ^= {str(group)}
        keep = groups.key_of(str(group)) if str(group) not in self.unfolded else key
        self.reshow(keep)  # type: ignore[attr-defined]
