"""What every console screen shares: the messages from the engine, the keys and their actions."""
from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:
    from console.app import EvmanApp
    from engine.engine import Change


class EngineChanged(Message, bubble=False):
    """The in-process engine finished a tick that changed something (posted from its thread)."""

    def __init__(self, changes: list[Change]) -> None:
        super().__init__()
        self.changes = changes

    @property
    def events(self) -> set[str]:
        """Event names, and run:N / alert:N request targets still to be resolved."""
        return {c.event for c in self.changes}


class DatabaseChanged(Message, bubble=False):
    """Another connection committed (an attached console's view of a remote engine's work)."""

    def __init__(self, events: set[str], *, definitions: bool = False) -> None:
        super().__init__()
        self.events = events
        self.definitions = definitions


ACTION_KEYS: tuple[tuple[str, str, str, str], ...] = (
    # key, action, footer label, what it does (help screen and command palette)
    ("enter", "details", "Details", "Run details and output of the selected event"),
    ("d", "tree", "Tree", "Dependency tree: what it needs, what follows it"),
    ("o", "overdue", "Overdue", "Runs that are late, overdue, missed or over their maximum"),
    ("l", "alerts", "Alerts", "Alerts, unacknowledged first"),
    ("t", "trigger", "Trigger", "Trigger a new run of the selected event now"),
    ("r", "restart", "Restart", "Restart the selected run (or the event's latest run)"),
    ("k", "kill", "Kill", "Kill the selected event's active run (asks first)"),
    ("h", "hold", "Hold", "Hold the event: no new runs start"),
    ("u", "release", "Release", "Release a held event"),
    ("a", "ack", "Ack", "Acknowledge the selected alert, or the event's open alerts"),
    ("question_mark", "help", "Help", "Every key"),
    ("q", "quit", "Quit", "Quit (stops the engine this console started)"),
)


def action_bindings(*first: Binding, back: str = "Back") -> list[BindingType]:
    """A screen's keys: its own `first` (shown first in the footer), then the shared actions.
    Each screen lists them all itself: inherited bindings would always come first."""
    return [*first, *(Binding(key, action, label, tooltip=what) for key, action, label, what in ACTION_KEYS),
            Binding("escape", "back", back)]


class EvmanScreen(Screen[None]):
    """A console screen. Subclasses say what is selected and set BINDINGS = action_bindings(...);
    the actions here turn keys into `requests` rows (never into direct changes of run state)."""

    @property
    def evman(self) -> EvmanApp:
        return cast("EvmanApp", self.app)

    # -- what is selected (subclasses override) -------------------------------------------

    def selected_event(self) -> str | None:
        return None

    def selected_run(self) -> int | None:
        return None

    def selected_alert(self) -> int | None:
        return None

    def _event_or_say(self) -> str | None:
        event = self.selected_event()
        if event is None:
            self.notify("Select an event first.", severity="warning")
        return event

    # -- actions that ask the engine ---------------------------------------------------------

    def _ask(self, verb: str) -> None:
        event = self._event_or_say()
        if event is not None:
            self.evman.send_request(verb, event)

    def action_trigger(self) -> None:
        self._ask("trigger")

    def action_hold(self) -> None:
        self._ask("hold")

    def action_release(self) -> None:
        self._ask("release")

    def restart_target(self) -> str | None:
        """What `r` restarts: the selected run, else the selected event's latest run."""
        run = self.selected_run()
        return f"run:{run}" if run is not None else self.selected_event()

    def kill_target(self) -> tuple[str, str] | None:
        """What `k` kills, and how the question names it."""
        run, event = self.selected_run(), self.selected_event()
        if run is not None:
            return f"run:{run}", f"run {run} of {event}"
        return None if event is None else (event, f"the active run of {event}")

    def action_restart(self) -> None:
        target = self.restart_target()
        if target is None:
            self.notify("Select an event first.", severity="warning")
        else:
            self.evman.send_request("restart", target)

    def action_ack(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            self.evman.send_request("ack", f"alert:{alert}")
        else:
            self._ask("ack")

    def action_kill(self) -> None:
        from console.screens.confirm import ConfirmScreen
        chosen = self.kill_target()
        if chosen is None:
            self.notify("Select an event first.", severity="warning")
            return
        target, what = chosen
        if self.evman.refuse_if_readonly("kill", target):
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self.evman.send_request("kill", target)
            else:
                self.notify(f"Kill cancelled; {target} left alone.", timeout=3)

        self.app.push_screen(ConfirmScreen(
            f"Kill {what}?", "TERM to its process group, then KILL; the engine records it as killed.",
            yes="Kill"), answered)

    # -- navigation ------------------------------------------------------------------------

    def action_details(self) -> None:
        from console.screens.run_detail import RunDetailScreen
        event = self._event_or_say()
        if event is not None:
            self.app.push_screen(RunDetailScreen(event, run_id=self.selected_run()))

    def action_tree(self) -> None:
        from console.screens.tree import TreeScreen
        event = self._event_or_say()
        if event is not None:
            self.app.push_screen(TreeScreen(event))

    def action_overdue(self) -> None:
        from console.screens.overdue import OverdueScreen
        if not isinstance(self, OverdueScreen):
            self.app.push_screen(OverdueScreen())

    def action_alerts(self) -> None:
        from console.screens.alerts import AlertsScreen
        if not isinstance(self, AlertsScreen):
            self.app.push_screen(AlertsScreen())

    def action_help(self) -> None:
        from console.screens.help import HelpScreen
        self.app.push_screen(HelpScreen())

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        self.evman.quit_cleanly()

    # -- live data -----------------------------------------------------------------------------

    def on_engine_changed(self, message: EngineChanged) -> None:
        self.changed(message.events)

    def on_database_changed(self, message: DatabaseChanged) -> None:
        self.changed(message.events, definitions=message.definitions)

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        """Something changed in the database: re-read what this screen shows (in a worker)."""
