"""Who drives the database a console opens: a live engine (the console attaches and watches it),
the engine the console starts (it runs in the console's worker thread), or none (read-only, or
it could not start: the header says why)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from evman.console.mailbox import engine_is_live
from evman.engine.clock import Clock
from evman.engine.store import Store, StoreError, open_store

if TYPE_CHECKING:
    from evman.engine.engine import Change, Engine

log = logging.getLogger("evman.console")


class EngineReady(Message):
    """The console knows who drives the database: `mode` is engine, attached or none."""

    def __init__(self, mode: str, engine: Engine | None = None, note: str | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.engine = engine
        self.note = note


def engine_for(
    db_target: Path | str,
    reading: Callable[[], AbstractContextManager[Store]],
    clock: Clock,
    *,
    may_start: bool,
    tick_s: float,
    stop_grace_s: float,
    on_change: Callable[[list[Change]], None],
) -> EngineReady:
    """Attach to a live engine, else start one (started, not yet running: the console runs
    it in a worker of its own), else none, with why."""
    with reading() as store:
        live = engine_is_live(store, now=clock.now())
    if live:
        return EngineReady("attached")
    if not may_start:
        return EngineReady("none")
    from evman.engine.engine import Engine, EngineBusy

    engine = Engine(
        open_store(db_target, create=False), clock=clock, tick_s=tick_s, on_change=on_change, stop_grace_s=stop_grace_s
    )
    try:
        engine.start()
    except EngineBusy as exc:
        return EngineReady("attached", note=str(exc))
    except StoreError as exc:
        return EngineReady("none", note=f"could not start the engine: {exc}")
    except Exception as exc:  # a bug must show, not leave the header saying "starting" forever
        engine.executors.shutdown(wait_s=0)
        log.exception("the engine failed to start")
        return EngineReady("none", note=f"the engine failed to start: {type(exc).__name__}: {exc}")
    return EngineReady("engine", engine=engine)
