"""An engine's notifier (engine/companions.py) starts as soon as the database lets it connect: a database that
cannot be opened when the engine starts (a server restarting) delays the pages, it does not end
the engine with a traceback. Real SQLite files, a real engine, the real notifier."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from evman.engine.companions import NotifierStart
from evman.engine.engine import Engine
from evman.engine.store import open_store
from tests.outside import wait_until


def test_the_notifier_starts_once_its_database_opens(
    engine_factory: Callable[..., Engine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(NotifierStart, "RETRY_S", 0.05)
    engine = engine_factory('[defaults]\ntimezone = "UTC"\n')
    later = tmp_path / "later.db"  # not there yet: opening it fails as a down server does
    with caplog.at_level(logging.INFO, logger="evman"):
        starting = NotifierStart(later, engine).start()
        assert starting.notifier is None
        open_store(later).close()
        wait_until(lambda: starting.notifier is not None, timeout=10, what="the notifier to connect")
        starting.stop()
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("the notifier could not connect (") and "trying again every" in m for m in said), said
    assert "the notifier connected; it delivers the alerts that waited" in said
