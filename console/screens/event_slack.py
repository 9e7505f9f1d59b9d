"""The events screen's slack column: for the events a deadline depends on, the time their runs
have to spare (engine/foresight, as `evman plan` says it). A base of EventsScreen: it keeps the
cells by event, and reads them again every PLAN_EVERY_S, when the definitions change, and soon
after a run or an event changed."""

from __future__ import annotations

from typing import Any, Final

from textual import work
from textual.message import Message
from textual.worker import get_current_worker

from evman.console.screens.base import EvmanScreen
from evman.console.widgets.event_table import EventTable

PLAN_EVERY_S: Final = 30.0
"""The slack column is re-read this often (and when the definitions change)."""
SLACK_AFTER_CHANGE_S: Final = 2.0
"""...and this long after a run or an event changed, while any event shows a slack (changes in
one burst are projected once; a database without deadlines never projects on a change)."""


class SlackRead(Message):
    """Slack cells by event, for the events with a deadline."""

    def __init__(self, cells: dict[str, tuple[str, str]]) -> None:
        super().__init__()
        self.cells = cells


class SlackColumn(EvmanScreen):
    """The slack cells by event (`slack`), read in a worker and redrawn where they changed."""

    rows: dict[str, dict[str, Any]]
    loaded: bool

    def __init__(self) -> None:
        super().__init__()
        self.slack: dict[str, tuple[str, str]] = {}
        self._slack_pending = False

    @property
    def table(self) -> EventTable:
        raise NotImplementedError

    @work(thread=True, exclusive=True, group="events-slack")
    def load_slack(self) -> None:
        """Only the events a deadline depends on are read and projected (engine/foresight)."""
        from evman.console.views import plan
        from evman.engine.foresight.reading import read_tonight

        with self.services.reading() as store:
            tonight = read_tonight(store, self.services.now(), scoped=True)
        cells = plan.slack_cells(tonight.project())  # projected without holding the store
        if not get_current_worker().is_cancelled:
            self.post_message(SlackRead(cells))

    def on_slack_read(self, message: SlackRead) -> None:
        changed = set(message.cells) ^ set(self.slack) | {n for n, c in message.cells.items() if self.slack.get(n) != c}
        self.slack = message.cells
        if self.loaded:
            self.table.update([n for n in changed if n in self.rows])

    def slack_after_change(self) -> None:
        """A run or an event changed: read the slack again in SLACK_AFTER_CHANGE_S, if any shows."""
        if self.slack and not self._slack_pending:
            self._slack_pending = True
            self.set_timer(SLACK_AFTER_CHANGE_S, self._slack_after_change)

    def _slack_after_change(self) -> None:
        self._slack_pending = False
        self.load_slack()
