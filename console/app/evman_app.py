"""The console app: wires the store, the engine thread (or a remote engine) and the screens."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from evman.console.app import collector
from evman.console.app.awaiting import Requests, RequestSent
from evman.console.app.connect import EngineReady, engine_for
from evman.console.app.first_read import FirstRead
from evman.console.app.styles import StyledApp
from evman.console.app.watcher import EngineSeen, RequestAnswered, Watcher
from evman.console.screens import registry
from evman.console.screens.base import EvmanScreen
from evman.console.screens.commands import EvmanCommands
from evman.console.screens.events import EventsScreen
from evman.console.screens.services import DatabaseChanged, EngineChanged
from evman.console.widgets.status_bar import Status, StatusBar
from evman.console.widgets.tones import palette_for
from evman.engine.clock import Clock, SystemClock, parse_iso
from evman.engine.store import Store, StoreError, open_store
from evman.engine.store.targets import db_target, short_name

if TYPE_CHECKING:
    from evman.engine.companions import Companions, Options
    from evman.engine.engine import Change, Engine

log = logging.getLogger("evman.console")

REST_AFTER_S: Final = 1.0
"""The engine starts when the first rows are on screen, or this long after the app mounted."""


class EvmanApp(StyledApp):
    """The operator console. One Store (under a lock) serves every worker thread; the engine,
    when this console runs it, has its own Store in its own thread."""

    TITLE = "evman"
    COMMANDS = App.COMMANDS | {EvmanCommands}
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", show=False), *registry.bindings()]

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Clock | None = None,
        tick_s: float = 1.0,
        readonly: bool = False,
        operator: str = "operator",
        start_engine: bool = True,
        zone: tzinfo | str | None = None,
        notify_alerts: bool = False,
        stop_grace_s: float = 10.0,
        companions: Options | None = None,
        first_read: FirstRead | None = None,
    ) -> None:
        """`first_read`: the store opened and the first rows read as `evman` started (launch.py)."""
        super().__init__()
        self.db_target = db_target(db_path)
        """What --db named: a file's Path or a postgresql:// URL."""
        self.db_path = self.db_target if isinstance(self.db_target, Path) else Path.cwd() / short_name(self.db_target)
        """A path that run log paths are shown relative to (the file, or the working directory)."""
        self.clock: Clock = clock or SystemClock()
        self.tick_s = tick_s
        self.readonly = readonly
        self.operator = operator
        self.start_engine = start_engine
        if companions is None and notify_alerts:
            from evman.engine.companions import Options

            companions = Options()
        self.companions_options = companions
        """What runs beside our engine (notifier, housekeeper, heartbeat, metrics); None: nothing."""
        self.companions: Companions | None = None
        self.stop_grace_s = stop_grace_s
        self.zone = zone_named(zone) if isinstance(zone, str) else zone or datetime.now().astimezone().tzinfo
        self.first_read = first_read
        self.store = first_read.store if first_read else open_store(self.db_target, create=False, readonly=readonly)
        self._store_lock = first_read.lock if first_read else threading.Lock()
        self.mode = "starting"
        self.engine: Engine | None = None
        self.notifier: Any = None
        self.status = Status(
            db_name=short_name(self.db_target),
            readonly=readonly,
            operator=operator,
            zone=self.zone,
            now=self.clock.now(),
        )
        self.palette = palette_for(self.theme_variables)  # App.__init__ just made them; on_mount again
        self.requests = Requests(self, self.reading, operator=operator, readonly=readonly)
        self._stopping = threading.Event()
        self._rest_started = False
        awaited = self.requests.awaiting.ids
        self.watcher = Watcher(
            self.reading, self.clock, self.post_message, awaited, engine_here=lambda: self.mode == "engine"
        )

    # -- wiring ----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        screen = EventsScreen()
        screen.read_ahead(self.first_read.rows if self.first_read else None)
        if self.first_read:
            self.watcher.looked_first(self.first_read.look)
        return screen

    def on_mount(self) -> None:
        self.palette.update(palette_for(self.get_css_variables()))  # the theme is final now
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_timer(REST_AFTER_S, self.first_frame_shown)  # if the first rows never come

    def first_frame_shown(self) -> None:
        """The events screen shows its first rows (or REST_AFTER_S passed): now start the engine
        (or attach to one), the watcher, and the imports of the screens no key opened yet, in
        worker threads. Before, their imports (the engine's stages, foresight, schedules) and
        reads shared the interpreter with the first frame and made it later."""
        if self._rest_started:
            return
        self._rest_started = True
        collector.release()
        self.read_later_css()
        self.run_worker(self._connect, thread=True, group="connect", exit_on_error=False)
        self.run_worker(self.watcher.run, thread=True, group="watch", exit_on_error=False)
        self.run_worker(registry.preload, thread=True, group="preload", exit_on_error=False)

    def reading_first_rows(self, store: Store) -> None:
        self.watcher.look_first(store)

    def on_unmount(self) -> None:
        self._stopping.set()
        self.watcher.stop()
        if self.engine is not None:
            self.engine.stop()

    def now(self) -> datetime:
        return self.clock.now()

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """The console's Store, for one worker thread at a time (a sqlite3 connection must not
        be used by two threads at once)."""
        with self._store_lock:
            yield self.store

    def _theme_changed(self, _theme: Any) -> None:
        self.palette.clear()
        self.palette.update(palette_for(self.get_css_variables()))
        for screen in self.screen_stack:
            for widget in [screen, *screen.query("*")]:
                restyle = getattr(widget, "restyle", None)
                if callable(restyle):
                    restyle()
                elif isinstance(widget, StatusBar):
                    widget.refresh()

    # -- screens ------------------------------------------------------------------------------

    def action_open(self, name: str) -> None:
        self.open_screen(name)

    def open_screen(self, name: str) -> None:
        """The registry's screen `name`, for what the screen on top has selected."""
        key, here = registry.opener(name), self.screen
        if key is None or key.opens is None:
            raise ValueError(f"no screen is registered as {name!r}; see console/screens/registry.py")
        chosen = (
            registry.Chosen(here.selected_event(), here.selected_run())
            if isinstance(here, EvmanScreen)
            else registry.Chosen(None, None)
        )
        if key.needs_event and chosen.event is None:
            self.notify("Select an event first.", severity="warning")
            return
        screen = key.opens(chosen)
        if not key.stacks and type(screen) is type(here):
            return
        if isinstance(screen, EvmanScreen) and screen.reads_first:
            self._push_read(screen)
        else:
            self.push_screen(screen)

    @work(group="open", exclusive=True, exit_on_error=False)
    async def _push_read(self, screen: EvmanScreen) -> None:
        """Read what `screen` shows (in a thread, the event loop stays free), then push it:
        its first frame is complete."""

        def read() -> None:
            with self.reading() as store:
                screen.preload(store)

        try:
            await asyncio.to_thread(read)
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not read for %s: %s", type(screen).__name__, exc)  # it reads again on mount
        self.push_screen(screen)

    def go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    # -- who drives the database --------------------------------------------------------------

    def _connect(self) -> None:
        """Attach to a live engine, or start ours (in this worker; run() gets its own)."""
        ready = engine_for(
            self.db_target,
            self.reading,
            self.clock,
            may_start=self.start_engine and not self.readonly,
            tick_s=self.tick_s,
            stop_grace_s=self.stop_grace_s,
            on_change=self._engine_changed,
        )
        if ready.engine is not None and self.companions_options is not None:
            from evman.engine.companions import Companions

            self.companions = Companions(self.db_target, ready.engine, self.companions_options).start()
            self.notifier = self.companions.notifier
        self.post_message(ready)

    def _engine_changed(self, changes: list[Change]) -> None:
        """Called in the engine thread after a tick that changed something."""
        self.post_message(EngineChanged(changes))

    def on_engine_ready(self, message: EngineReady) -> None:
        self.mode = message.mode
        if message.engine is not None:
            self.engine = message.engine
            if self._stopping.is_set():
                message.engine.stop()
            self.run_worker(message.engine.run, thread=True, group="engine", exit_on_error=False)
        if message.mode == "attached":
            self.notify(
                message.note
                or f"Another engine drives {self.db_path.name}: this console "
                "watches it and sends your actions as requests.",
                title="Attached",
                timeout=6,
            )
        elif message.note:
            self.notify(message.note, title="No engine", severity="error", timeout=10)
        self.update_status(mode=self.mode)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "engine" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.state is WorkerState.ERROR:
            self.notify(f"The engine stopped: {event.worker.error}", title="Engine", severity="error")
        if self.mode == "stopping":
            self.exit(0)
        elif not self._stopping.is_set():
            self.mode = "stopped"
            self.update_status(mode="stopped")

    async def action_quit(self) -> None:
        self.quit_cleanly()

    def quit_cleanly(self) -> None:
        """`q`: stop our engine first (it waits for running commands, up to its grace), with
        the console still on screen saying so; then leave."""
        if self.engine is None or self.mode != "engine":  # a second q while stopping: leave now
            self.exit(0)
            return
        running = self.engine.executors.running_count()
        self.mode = "stopping"
        self.update_status(mode="stopping")
        if running:
            self.notify(
                f"Waiting up to {self.stop_grace_s:g} s for {running} running command(s); "
                "the next engine watches any that outlive it.",
                title="Stopping",
                timeout=30,
            )
        self.engine.stop()

    # -- what the watcher saw ---------------------------------------------------------------

    def on_engine_seen(self, message: EngineSeen) -> None:
        if self.mode in ("attached", "none", "silent"):
            self.mode = "attached" if message.live else ("silent" if self.mode == "attached" else self.mode)
        self.update_status(
            mode=self.mode,
            pid=message.pid,
            host=message.host,
            heartbeat_at=parse_iso(message.heartbeat_at),
            engines=message.engines,
        )
        self.requests.expire()

    def on_engine_changed(self, message: EngineChanged) -> None:
        for screen in self.screen_stack:
            screen.post_message(EngineChanged(message.changes))

    def on_database_changed(self, message: DatabaseChanged) -> None:
        for screen in self.screen_stack:
            screen.post_message(DatabaseChanged(message.events, definitions=message.definitions))

    # -- requests -----------------------------------------------------------------------------

    def refuse_if_readonly(self, verb: str, target: str) -> bool:
        return self.requests.refuse_if_readonly(verb, target)

    def send_request(self, verb: str, target: str, args: dict[str, Any] | None = None) -> None:
        """Write a `requests` row signed with the operator's name; the engine acts on it."""
        self.requests.send(verb, target, args)

    def on_request_sent(self, message: RequestSent) -> None:
        no_engine = self.mode in ("none", "silent", "stopped")
        if self.requests.sent(message, no_engine_on=self.db_path.name if no_engine else None):
            if self.engine is not None:
                self.engine.wake()
            self.watcher.wake()

    def on_request_answered(self, message: RequestAnswered) -> None:
        self.requests.answered(message.row)

    # -- the header ------------------------------------------------------------------------------

    def update_status(self, **changes: Any) -> None:
        self.status = self.status.but(**changes)
        self.show_status()

    def show_status(self) -> None:
        self.status = self.status.but(now=self.clock.now())
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.palette = self.palette
                bar.show(self.status)


def make_app(
    db_path: str | Path,
    *,
    clock: Clock | None = None,
    start_engine: bool = True,
    readonly: bool = False,
    operator: str = "test",
    tick_s: float = 0.05,
    zone: tzinfo | str | None = "UTC",
    stop_grace_s: float = 2.0,
) -> EvmanApp:
    """The console as tests drive it: no alert delivery, a quick tick, UTC on screen."""
    return EvmanApp(
        db_path,
        clock=clock,
        start_engine=start_engine,
        readonly=readonly,
        operator=operator,
        tick_s=tick_s,
        zone=zone,
        stop_grace_s=stop_grace_s,
    )


def zone_named(name: str) -> tzinfo:
    """The zone `name` (the console's own, its local one, needs no zoneinfo: imported only here)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
