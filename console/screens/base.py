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
from evman.engine.verbs import Verb, verb_named


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

    def action_request(self, name: str) -> None:
        """A request verb's key (engine/verbs/table.py): send it for what is selected, asking
        first where the verb says so."""
        verb = verb_named(name)
        if verb is None:
            raise ValueError(f"no request verb is called {name!r}; see engine/verbs/table.py")
        target = self.target_for(verb)
        if target is None:
            self.notify("Select an event first.", severity="warning")
        elif verb.confirm is None:
            self.services.send_request(verb.name, target)
        elif not self.services.refuse_if_readonly(verb.name, target):
            self._confirm(verb, target)

    def target_for(self, verb: Verb) -> str | None:
        """What a verb's key names: the selected alert, else the selected run, else the
        selected event (as far as the verb takes each)."""
        alert = self.selected_alert() if verb.takes("alert") else None
        if alert is not None:
            return f"alert:{alert}"
        run = self.run_target(verb) if verb.takes("run") else None
        return f"run:{run}" if run is not None else self.selected_event()

    def run_target(self, verb: Verb) -> int | None:
        """The run a verb's key names where it takes a run: the selected one (a screen whose
        runs are not what its keys act on says None)."""
        return self.selected_run()

    def has_active_run(self, target: str) -> bool | None:
        """Whether `target` (an event or run:N) has a waiting or running run, when this screen
        knows without reading; None: read it."""
        return None

    def _confirm(self, verb: Verb, target: str) -> None:
        assert verb.confirm is not None
        if not verb.confirm.needs_active:
            self._ask_first(verb, target, True)
            return
        known = self.has_active_run(target)
        if known is None:
            self._read_then_ask(verb, target)
        else:
            self._ask_first(verb, target, known)

    @work(thread=True, group="kill-check", exit_on_error=False)
    def _read_then_ask(self, verb: Verb, target: str) -> None:
        with self.services.reading() as store:
            active = screen_rows.has_active_run(store, target)
        self.app.call_from_thread(self._ask_first, verb, target, active)

    def _ask_first(self, verb: Verb, target: str, active: bool) -> None:
        """Ask before sending; with nothing waiting or running (where that matters), say so instead."""
        from evman.console.screens.confirm import ConfirmScreen

        confirm = verb.confirm
        assert confirm is not None
        if not active:
            why = "is not waiting or running" if target.startswith("run:") else "has no waiting or running run"
            self.notify(f"{target} {why}; nothing to {verb.name}.", title=verb.label, timeout=4)
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self.services.send_request(verb.name, target)
            else:
                self.notify(f"{verb.label} cancelled; {target} left alone.", timeout=3)

        what = (
            f"run {target.removeprefix('run:')} of {self.selected_event()}"
            if target.startswith("run:")
            else confirm.event_words.format(event=target)
        )
        self.app.push_screen(ConfirmScreen(f"{verb.label} {what}?", confirm.detail, yes=confirm.yes), answered)

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
