"""What the fleet tests share: their tick and lease, and loading definitions into the shared
PostgreSQL database (the fixtures `clock` and `make` are in conftest.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.fleet.membership import Membership
from evman.engine.store import StoreError, open_store

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


def fail_next_apply(engine: Engine) -> list[int]:
    """Make `engine`'s next flush fail as a lost connection does (its transaction and row locks
    go); later ones go through. The list returned holds a 1 once it has failed."""
    real_apply = engine.store.apply
    failed: list[int] = []

    def apply_once_failing(batch: Any, owner: Any = None) -> int:
        if not failed:
            failed.append(1)
            engine.store.drop_claims()  # what a lost connection does: the transaction and its locks go
            raise StoreError("the connection failed (test); evman retries at the next step")
        return real_apply(batch, owner)

    engine.store.apply = apply_once_failing  # type: ignore[method-assign]
    return failed
