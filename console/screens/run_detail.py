"""`enter`: one event's recent runs; for the selected run its trigger, times, exit code,
reason, output checks, and its log, followed live while the command runs."""

from __future__ import annotations

import codecs
import os
import time
from pathlib import Path
from typing import Any, ClassVar, Final

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Log, Static
from textual.worker import get_current_worker

from evman.console.screens.base import EvmanScreen, back_keys
from evman.console.views import contract, screen_rows
from evman.console.widgets.key_bar import KeyBar
from evman.console.widgets.line_table import Column, LineTable
from evman.console.widgets.status_bar import StatusBar
from evman.console.widgets.tones import styled
from evman.engine.store import Store
from evman.engine.verbs import Verb
from evman.engine.vocabulary import ACTIVE_STATES, RunState

COLUMNS: Final = (
    Column("id", "Run", 10),
    Column("state", "State", 11),
    Column("trigger", "Trigger", 10),
    Column("try", "Try", 3),
    Column("started", "Started", 11),
    Column("took", "Took", 7),
    Column("exit", "Exit", 4),
    Column("why", "Reason", 12, fill=True),
)
RUNS_SHOWN: Final = 50
TAIL_FIRST_BYTES: Final = 256 * 1024
TAIL_EVERY_S: Final = 0.2


class DetailLoaded(Message):
    def __init__(self, detail: dict[str, Any] | None, runs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.detail = detail
        self.runs = runs


class LogText(Message):
    """Output of `run_id` read from its log file (or the stored tail when the file is gone)."""

    def __init__(self, run_id: int, text: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.text = text


class RunDetailScreen(EvmanScreen):
    BINDINGS: ClassVar[list[BindingType]] = back_keys()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]

    def __init__(self, event: str, *, run_id: int | None = None) -> None:
        super().__init__()
        self.event = event
        self.wanted_run = run_id
        self.detail: dict[str, Any] | None = None
        self.runs: dict[str, dict[str, Any]] = {}
        self.shown_run: int | None = None
        self.following: int | None = None
        """The run whose log the tail worker keeps reading (it is still running)."""

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(Text(self.event, style="bold"), id="title")
        yield Static("", id="event-info")
        with Horizontal(id="detail-body"):
            yield LineTable(COLUMNS, id="runs")
            with Vertical(id="run-pane"):
                yield Static("", id="run-info")
                yield Log(id="log", highlight=False, max_lines=20_000, auto_scroll=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.services.show_status()
        first = self.take_preloaded()
        if isinstance(first, DetailLoaded):
            self.on_detail_loaded(first)
        else:
            self.load()
        self.set_interval(1.0, self.services.show_status)

    def on_unmount(self) -> None:
        self.following = None

    @property
    def table(self) -> LineTable:
        return self.query_one(LineTable)

    # -- reading ---------------------------------------------------------------------------

    def read_shown(self, store: Store) -> DetailLoaded:
        detail = contract.event_detail(store, self.event)
        runs = contract.run_list(store, self.event, RUNS_SHOWN)
        if detail is not None:  # the bounds as times, for the newest run (else the next one)
            slot = runs[0]["scheduled_for"] if runs else detail.get("next_fire_at")
            detail["resolved"] = screen_rows.resolved_bounds(store, self.event, slot)
        return DetailLoaded(detail, runs)

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        with self.services.reading() as store:
            loaded = self.read_shown(store)
        if not get_current_worker().is_cancelled:
            self.post_message(loaded)

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        if definitions or self.event in events or any(e.startswith(("run:", "alert:", "runs-after:")) for e in events):
            self.load()

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.detail is None:
            self.query_one("#event-info", Static).update(f"{self.event} is not defined (any more).")
            return
        self.detail = message.detail
        self.runs = {str(r["id"]): r for r in message.runs}
        self._show_event(message.detail)
        self.table.sync([(str(r["id"]), self._cells(r)) for r in message.runs])
        if self.shown_run is None:
            first = str(self.wanted_run) if self.wanted_run is not None else next(iter(self.runs), None)
            if first is not None and self.table.move_to(first):
                self._show_run(first)
        elif str(self.shown_run) in self.runs:
            self._show_run(str(self.shown_run), reopen=False)

    # -- drawing ------------------------------------------------------------------------------

    def _show_event(self, d: dict[str, Any]) -> None:
        p = self.services.palette
        title = Text.assemble(
            (d["name"], "bold"),
            "  ",
            styled(screen_rows.state_cell({**d, "run_state": d["state"]}), p),
            ("  (held)" if d["held"] else "", p.get("warn", "")),
        )
        self.query_one("#title", Static).update(title)
        s, w, rt = d["stats"], d["window"], d["runtime"]
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style=p.get("muted", ""), no_wrap=True, min_width=7)
        grid.add_column(overflow="ellipsis", no_wrap=True)
        grid.add_row("command", d["command"])
        grid.add_row(
            "when",
            f"{d['schedule'] or 'no schedule'} ({d['timezone']})"
            + (f" · requires {d['requires']}" if d["requires"] else "")
            + f" · next {screen_rows.until(d['next_fire_at'], self.services.now())}",
        )
        grid.add_row("bounds", _bounds_text(w, rt, s, self._resolved(d)))
        if d.get("waiting_reason"):
            grid.add_row("waiting", d["waiting_reason"])
        self.query_one("#event-info", Static).update(grid)

    def _resolved(self, d: dict[str, Any]) -> dict[str, str] | None:
        """The window's times in the console's zone, and which slot they belong to."""
        found = d.get("resolved")
        if not found:
            return None
        now, zone = self.services.now(), self.services.zone
        shown = {k: screen_rows.local_time(v, zone, now, exact=True) if v else "…" for k, v in found.items()}
        newest = next(iter(self.runs.values()), None)
        shown["of"] = f"run:{newest['id']}" if newest else "the next run"
        return shown

    def _cells(self, run: dict[str, Any]) -> dict[str, tuple[str, str]]:
        now, zone = self.services.now(), self.services.zone
        state = run["state"]
        took = run["duration_s"]
        if state == RunState.RUNNING and run["started_at"]:
            took = screen_rows.seconds_since(run["started_at"], now)
        return {
            "id": (f"run:{run['id']}", "plain"),
            "state": (
                f"{screen_rows.STATE_SYMBOLS.get(state, ' ')} {state}",
                screen_rows.STATE_TONES.get(state, "plain"),
            ),
            "trigger": (run["trigger"], "plain"),
            "try": (str(run["attempt"]), "plain"),
            "started": (screen_rows.local_time(run["started_at"], zone, now), "plain")
            if run["started_at"]
            else ("not started", "muted"),
            "took": (screen_rows.span(took) if took is not None else "-", "plain"),
            "exit": ("-" if run["exit_code"] is None else str(run["exit_code"]), "plain"),
            "why": (run["reason"] or run["waiting_reason"] or "", "plain"),
        }

    def _show_run(self, key: str, *, reopen: bool = True) -> None:
        run = self.runs.get(key)
        if run is None:
            return
        self.query_one("#run-info", Static).update(self._run_info(run))
        is_new = self.shown_run != run["id"]
        self.shown_run = run["id"]
        if run["state"] not in ACTIVE_STATES and self.following == run["id"]:
            self.following = None  # the tail worker reads what is left, then stops
            self.query_one("#log", Log).border_title = self._log_title(run)
        if is_new and reopen:
            log = self.query_one("#log", Log)
            log.clear()
            self.following = run["id"] if run["state"] in ACTIVE_STATES else None
            log.border_title = self._log_title(run)
            if run.get("log_pruned_at"):  # retention deleted the file: say so, show the stored tail
                note = f"(the log file was pruned {contract.short_time(run['log_pruned_at'])} by retention, keep.logs;"
                self.tail(run["id"], None, f"{note} its stored tail follows)\n{run.get('output_tail') or ''}\n")
            else:
                self.tail(run["id"], run.get("log_path"), run.get("output_tail"))

    def _log_title(self, run: dict[str, Any]) -> str:
        where = _near(run.get("log_path"), self.services.db_path) if run.get("log_path") else "stored tail"
        if run.get("log_pruned_at"):
            where = "log pruned · stored tail"
        return f"output of run:{run['id']} · {where}" + (" · following" if self.following == run["id"] else "")

    def _run_info(self, run: dict[str, Any]) -> Group:
        p, now, zone = self.services.palette, self.services.now(), self.services.zone
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style=p.get("muted", ""), no_wrap=True, min_width=7)
        grid.add_column(overflow="ellipsis", no_wrap=True)
        state = run["state"]
        grid.add_row(
            "run",
            Text.assemble(
                f"run:{run['id']} ",
                styled((state, screen_rows.STATE_TONES.get(state, "plain")), p),
                f" · attempt {run['attempt']} · trigger {run['trigger']}"
                + (f" by {run['triggered_by']}" if run.get("triggered_by") else "")
                + (f", repeats run:{run['repeats_run_id']}" if run.get("repeats_run_id") else ""),
            ),
        )
        grid.add_row("times", _times_text(run, zone, now))
        exit_text = "-" if run["exit_code"] is None else str(run["exit_code"])
        grid.add_row(
            "exit",
            f"{exit_text}"
            + (f" · {run['reason']}" if run.get("reason") else "")
            + (f" · waiting: {run['waiting_reason']}" if run.get("waiting_reason") else "")
            + (f" · flags {run['flags']}" if run.get("flags") else ""),
        )
        for check in run["checks"]:
            mark = ("✔", "ok") if check.get("ok") else ("✘", "bad")
            grid.add_row("output", Text.assemble(styled(mark, p), f" {check.get('path')}: {check.get('detail')}"))
        if not run["checks"]:
            grid.add_row("output", Text("no output checks ran", style=p.get("muted", "")))
        return Group(grid)

    # -- the log ------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="tail")
    def tail(self, run_id: int, path: str | None, stored: str | None) -> None:
        """Read the log from (near) its start, then follow it while the run is followed."""
        worker = get_current_worker()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        offset = -1
        while not worker.is_cancelled:
            following = self.following == run_id
            offset = self._read_more(run_id, path, offset, decoder)
            if not following:
                break
            time.sleep(TAIL_EVERY_S)
        if offset < 0 and not worker.is_cancelled:  # the file never appeared (or was removed)
            self.post_message(LogText(run_id, stored or "(no output captured)\n"))

    def _read_more(self, run_id: int, path: str | None, offset: int, decoder: Any) -> int:
        if not path:
            return offset
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if offset < 0:
                    offset = max(0, size - TAIL_FIRST_BYTES)
                    if offset:
                        self.post_message(LogText(run_id, f"… (the first {offset} bytes are not shown)\n"))
                if size < offset:  # truncated or replaced: start again
                    offset = 0
                fh.seek(offset)
                data = fh.read(size - offset)
        except FileNotFoundError:
            return offset
        except OSError as exc:
            self.post_message(LogText(run_id, f"(cannot read {path}: {exc.strerror})\n"))
            return offset
        text = decoder.decode(data)
        if text:
            self.post_message(LogText(run_id, text))
        return offset + len(data)

    def on_log_text(self, message: LogText) -> None:
        if message.run_id == self.shown_run:
            self.query_one("#log", Log).write(message.text)

    # -- selection and keys ---------------------------------------------------------------------------

    @on(LineTable.RowHighlighted, "#runs")
    def _highlighted(self, event: LineTable.RowHighlighted) -> None:
        if event.key is not None:
            self._show_run(event.key)

    def selected_event(self) -> str | None:
        return self.event

    def selected_run(self) -> int | None:
        return self.shown_run

    def run_target(self, verb: Verb) -> int | None:
        """The run shown, where the verb acts on a run in its state (restart: a finished one;
        kill: an active one); else the event."""
        run = self.runs.get(str(self.shown_run)) if self.shown_run is not None else None
        return int(run["id"]) if run and run["state"] in verb.run_states else None

    def has_active_run(self, target: str) -> bool | None:
        if target.startswith("run:") or not self.runs:
            return None
        return any(r["state"] in ACTIVE_STATES for r in self.runs.values())


def _bounds_text(
    window: dict[str, Any], runtime: dict[str, Any], stats: dict[str, Any], resolved: dict[str, str] | None
) -> str:
    """Window and lateness as times of one slot (`resolved`), else as defined."""
    parts = []
    if window["earliest"] or window["latest"]:
        parts.append(
            f"window {resolved['open_at']}–{resolved['due_by']}"
            if resolved
            else f"window {window['earliest'] or '…'}–{window['latest'] or '…'}"
        )
    if window["late_after"]:
        parts.append(f"late after {resolved['late_at'] if resolved else window['late_after']}")
    if resolved and (window["earliest"] or window["latest"] or window["late_after"]):
        parts[-1] += f" (for {resolved['of']}, scheduled {resolved['slot']})"
    if runtime["min_s"] is not None or runtime["max_s"] is not None:
        low = screen_rows.span(runtime["min_s"]) if runtime["min_s"] is not None else "0s"
        high = screen_rows.span(runtime["max_s"]) if runtime["max_s"] is not None else "…"
        parts.append(f"runtime {low}–{high}" + (" (kills)" if runtime["kill"] else ""))
    if stats["count"]:
        parts.append(
            f"observed p50 {screen_rows.span(stats['p50_s'])}, p90 {screen_rows.span(stats['p90_s'])}, "
            f"max {screen_rows.span(stats['max_s'])} over {stats['count']} successful run(s)"
        )
    return " · ".join(parts) or "no window, no runtime bounds, no successful run yet"


def _times_text(run: dict[str, Any], zone: Any, now: Any) -> str:
    """Scheduled, started, ended: a run that never started says so (as its Started cell does)."""
    started = f"started {screen_rows.local_time(run['started_at'], zone, now)}" if run["started_at"] else "not started"
    ended = f" · ended {screen_rows.local_time(run['ended_at'], zone, now)}"
    took = f" · took {screen_rows.span(run['duration_s'])}" if run["duration_s"] is not None else ""
    return f"scheduled {screen_rows.local_time(run['scheduled_for'], zone, now)} · {started}{ended}{took}"


def _near(path: str | None, db_path: Path) -> str:
    """A log path relative to the database's folder when it lies inside it."""
    if not path:
        return "-"
    try:
        return str(Path(path).relative_to(db_path.resolve().parent))
    except ValueError:
        return path
