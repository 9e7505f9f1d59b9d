"""What every console screen shares: what is selected, the actions that ask the engine, the
way back, and re-reading when the database changes. Screens reach the app only through
`Services` (console/screens/services.py); the keys that open screens live in the registry."""

from __future__ import annotations

from typing import cast

from textual import work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from evman.console.screens.services import DatabaseChanged, EngineChanged, Services
from evman.console.views import screen_rows
from evman.engine.store import Store


def back_keys(label: str = "Back") -> list[BindingType]:
    """A screen above the events table: Escape and q go back one, 0 and Home go home (Home
    before the focused widget's own Home)."""
    return [
        Binding("escape", "back", label),
        Binding("q", "back", label, show=False),
        Binding("0", "go_home", "Events", show=False),
        Binding("home", "go_home", "Events", show=False, priority=True),
    ]


class EvmanScreen(Screen[None]):
    """A console screen. Subclasses say what is selected; the actions here turn keys into
    `requests` rows (never into direct changes of run state). The shared keys are the app's
    (console/screens/registry.py); a screen binds only its own."""

    _preloaded: Message | None = None

    @property
    def services(self) -> Services:
        return cast("Services", self.app)

    # -- what it shows first ----------------------------------------------------------------

    def read_shown(self, store: Store) -> Message | None:
        """What this screen shows, read from the store in a worker thread: the message its
        load worker posts. None: it reads nothing."""
        return None

    @property
    def reads_first(self) -> bool:
        return type(self).read_shown is not EvmanScreen.read_shown

    def preload(self, store: Store) -> None:
        """Called (in a worker thread) before the screen is pushed, so that its first frame
        is already complete: one full redraw for a key, not two."""
        self._preloaded = self.read_shown(store)

    def take_preloaded(self) -> Message | None:
        found, self._preloaded = self._preloaded, None
        return found

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

    def has_active_run(self, target: str) -> bool | None:
        """Whether `target` (an event or run:N) has a waiting or running run, when this screen
        knows without reading; None: read it."""
        return None

    def action_kill(self) -> None:
        chosen = self.kill_target()
        if chosen is None:
            self.notify("Select an event first.", severity="warning")
            return
        target, what = chosen
        if self.services.refuse_if_readonly("kill", target):
            return
        known = self.has_active_run(target)
        if known is None:
            self._read_then_ask_kill(target, what)
        else:
            self._ask_kill(target, what, known)

    @work(thread=True, group="kill-check", exit_on_error=False)
    def _read_then_ask_kill(self, target: str, what: str) -> None:
        with self.services.reading() as store:
            active = screen_rows.has_active_run(store, target)
        self.app.call_from_thread(self._ask_kill, target, what, active)

    def _ask_kill(self, target: str, what: str, active: bool) -> None:
        """Ask before a kill; with nothing waiting or running, say so instead."""
        from evman.console.screens.confirm import ConfirmScreen

        if not active:
            why = "is not waiting or running" if target.startswith("run:") else "has no waiting or running run"
            self.notify(f"{target} {why}; nothing to kill.", title="Kill", timeout=4)
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self.services.send_request("kill", target)
            else:
                self.notify(f"Kill cancelled; {target} left alone.", timeout=3)

        self.app.push_screen(
            ConfirmScreen(
                f"Kill {what}?", "TERM to its process group, then KILL; the engine records it as killed.", yes="Kill"
            ),
            answered,
        )

    def action_approve(self) -> None:
        self._decide("approve")

    def action_reject(self) -> None:
        self._decide("reject")

    def _decide(self, verb: str) -> None:
        """Approve or reject the selected run (else the event's run awaiting approval), with a
        comment asked for first; the engine refuses a run that awaits no approval, in words."""
        from evman.console.screens.decide import DecideScreen

        run, event = self.selected_run(), self.selected_event()
        target = f"run:{run}" if run is not None else event
        if target is None:
            self.notify("Select an event or a run first.", severity="warning")
            return
        if self.services.refuse_if_readonly(verb, target):
            return

        def answered(comment: str | None) -> None:
            if comment is not None:
                self.services.send_request(verb, target, {"comment": comment} if comment else None)

        what = f"run {run} of {event}" if run is not None else f"the run of {event} awaiting approval"
        self.app.push_screen(DecideScreen(f"{verb.capitalize()} {what}?", verb), answered)

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
