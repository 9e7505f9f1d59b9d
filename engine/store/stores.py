"""The store: every part (events, runs, alerts, requests, engines, reads, writes) over one connection."""
from __future__ import annotations

from engine.store.alerts import AlertsPart
from engine.store.batch import BatchPart
from engine.store.engines import EnginesPart
from engine.store.events import EventsPart
from engine.store.reads import ReadsPart
from engine.store.requests import RequestsPart
from engine.store.runs import RunsPart
from engine.store.sqlite import SqliteConnection


class Parts(EventsPart, RunsPart, AlertsPart, RequestsPart, EnginesPart, ReadsPart, BatchPart):
    """Every statement evman runs, written once for every backend."""


class Store(Parts, SqliteConnection):
    """An evman SQLite database (a file, or memory with memory=True)."""
