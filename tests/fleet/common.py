"""What the fleet tests share: their tick and lease, and loading definitions into the shared
PostgreSQL database (the fixtures `clock` and `make` are in conftest.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.fleet.membership import Membership
from evman.engine.store import open_store

TICK_S = 0.2
LEASE_S = 1.0  # engine.fleet.MIN_LEASE_S: 3 ticks of 0.2 s would be shorter

Make = Callable[..., Engine]


def membership(engine: Engine) -> Membership:
    """`engine`'s place in the fleet (every engine on PostgreSQL has one)."""
    assert engine.fleet is not None
    return engine.fleet


def engine_id(engine: Engine) -> int:
    """The id of `engine`'s row in `engines` (once it has joined)."""
    token = membership(engine).token
    assert token is not None
    return token.engine_id


def load(dsn: str, text: str, base: Path, clock: FakeClock) -> None:
    store = open_store(dsn)
    try:
        defs = parse_definitions(
            textwrap.dedent(text), source=str(base / "defs.toml"), base_dir=base, known_events=store.event_names()
        )
        catalog.save(store, defs, now=clock.now())
    finally:
        store.close()
