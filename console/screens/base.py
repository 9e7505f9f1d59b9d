"""What every console screen shares: what is selected, the actions that ask the engine, the
way back, and re-reading when the database changes. Screens reach the app only through
`Services` (console/screens/services.py); the keys that open screens live in the registry."""
from __future__ import annotations

from typing import cast

from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.screens.services import DatabaseChanged, EngineChanged, Services


def back_keys(label: str = "Back") -> list[BindingType]:
    """A screen above the events table: Escape goes back one."""
    return [Binding("escape", "back", label)]


class EvmanScreen(Screen[None]):
    """A console screen. Subclasses say what is selected; the actions here turn keys into
    `requests` rows (never into direct changes of run state). The shared keys are the app's
    (console/screens/registry.py); a screen binds only its own."""

    @property
    def services(self) -> Services:
        return cast("Services", self.app)

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
            self.services.send_request(verb, event)

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
        """What `K` kills, and how the question names it."""
        run, event = self.selected_run(), self.selected_event()
        if run is not None:
            return f"run:{run}", f"run {run} of {event}"
        return None if event is None else (event, f"the active run of {event}")

    def action_restart(self) -> None:
        target = self.restart_target()
        if target is None:
            self.notify("Select an event first.", severity="warning")
        else:
            self.services.send_request("restart", target)

    def action_ack(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            self.services.send_request("ack", f"alert:{alert}")
        else:
            self._ask("ack")

    def action_kill(self) -> None:
        from console.screens.confirm import ConfirmScreen
        chosen = self.kill_target()
        if chosen is None:
            self.notify("Select an event first.", severity="warning")
            return
        target, what = chosen
        if self.services.refuse_if_readonly("kill", target):
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self.services.send_request("kill", target)
            else:
                self.notify(f"Kill cancelled; {target} left alone.", timeout=3)

        self.app.push_screen(ConfirmScreen(
            f"Kill {what}?", "TERM to its process group, then KILL; the engine records it as killed.",
            yes="Kill"), answered)

    def action_quit(self) -> None:
        self.services.quit_cleanly()

    # -- navigation ------------------------------------------------------------------------

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_go_home(self) -> None:
        self.services.go_home()

    def open(self, name: str) -> None:
        """Open a screen of the registry for this screen's selection (as its key would)."""
        self.services.open_screen(name)

    # -- live data -----------------------------------------------------------------------------

    def on_engine_changed(self, message: EngineChanged) -> None:
        self.changed(message.events)

    def on_database_changed(self, message: DatabaseChanged) -> None:
        self.changed(message.events, definitions=message.definitions)

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        """Something changed in the database: re-read what this screen shows (in a worker)."""
