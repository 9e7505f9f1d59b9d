"""The state an event's row shows: its active run, else its latest run that was not skipped."""

from __future__ import annotations

import pytest

from evman.engine.store import Store

pytestmark = pytest.mark.backends


def _run(store: Store, event: str, state: str, n: int) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO runs (event, state, trigger, scheduled_for, created_at) VALUES (?, ?, 'schedule', ?, 'x')",
            (event, state, f"2026-01-01T00:00:0{n}"),
        )


def _state(store: Store, name: str) -> str:
    rows = store.list_events(name=name)
    console = {r["name"]: r for r in store.console_events()}
    assert rows[0]["run_state"] == console[name]["run_state"]
    return str(rows[0]["run_state"])


def test_a_waiting_run_shows_through_newer_skipped_ones(engine_factory, store: Store) -> None:
    engine_factory('[[event]]\nname = "p"\nrun = "true"\n[[event]]\nname = "q"\nrun = "true"\n')
    _run(store, "p", "failed", 1)
    _run(store, "p", "waiting", 2)
    _run(store, "p", "skipped", 3)
    assert _state(store, "p") == "waiting"
    _run(store, "q", "failed", 1)
    _run(store, "q", "skipped", 2)
    assert _state(store, "q") == "failed"
