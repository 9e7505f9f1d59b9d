"""Console fixtures: databases seeded through the real loader, and a fixed one for snapshots."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.engine.clock import FakeClock, iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.store import RUN_COLUMNS, Store


def load_text(store: Store, text: str, base_dir: Path, now: datetime) -> None:
    """Definitions TOML into the store through the real loader (validation, catalog)."""
    defs = parse_definitions(
        textwrap.dedent(text), source=str(base_dir / "defs.toml"), base_dir=base_dir, known_events=store.event_names()
    )
    catalog.save(store, defs, now=now)


CHAIN = """
    [defaults]
    timezone = "UTC"
    driver = "ops"

    [[event]]
    name = "fetch"
    run = "echo fetched"
    schedule = "*/15 * * * *"
    on_success = ["publish"]

    [[event]]
    name = "publish"
    run = "true"
    requires = "success(fetch)"

    [[event]]
    name = "report"
    run = "true"
    requires = "success(fetch) and success(publish)"
    driver = "night"

    [[event]]
    name = "broken"
    shell = "echo about to fail; exit 3"
    driver = "night"

    [[event]]
    name = "slow"
    shell = "echo started; sleep 30"
"""


@pytest.fixture
def seed(store: Store, clock: FakeClock, tmp_path: Path) -> Callable[[str], Path]:
    """seed(definitions) -> the database path, loaded through the real loader."""

    def seed(text: str = CHAIN) -> Path:
        load_text(store, text, tmp_path, clock.now())
        assert store.path is not None
        return store.path

    return seed


SNAPSHOT_DEFS = """
    [defaults]
    timezone = "UTC"
    driver = "ops"

    [[event]]
    name = "collect-garbage"
    run = "true"
    schedule = "0 1 * * *"

    [[event]]
    name = "fetch-feeds"
    run = "python fetch.py --out feeds/today.json"
    schedule = "*/15 * * * *"
    requires = "success(collect-garbage)"
    window = { earliest = "00:00", latest = "06:00" }
    runtime = { min = "2s", max = "5m" }
    outputs = [ { path = "feeds/today.json", fresh = true } ]
    on_success = ["promote-to-test"]

    [[event]]
    name = "promote-to-test"
    run = "true"
    requires = "success(fetch-feeds)"

    [[event]]
    name = "build-index"
    run = "true"
    requires = "success(fetch-feeds)"

    [[event]]
    name = "publish"
    run = "true"
    requires = "success(promote-to-test) and success(build-index)"
    late_after = "05:00"
    driver = "lead"

    [[event]]
    name = "nightly-report"
    shell = "report --all"
    schedule = "30 2 * * *"
    window = { earliest = "02:30", latest = "03:00" }
    driver = "night"

    [[event]]
    name = "archive"
    run = "true"
    schedule = "0 4 * * *"
"""


@pytest.fixture
def snapshot_db(store: Store, clock: FakeClock, tmp_path: Path) -> Path:
    """A fixed batch at 2026-01-05 06:30 UTC: a run overdue past its window, one late,
    a failure with an alert, a missed run, a held event, and history."""
    clock.set(clock.now().replace(hour=6, minute=30, second=0))
    now = clock.now()
    load_text(store, SNAPSHOT_DEFS, tmp_path, now)
    logs = tmp_path / "evman.db.logs" / "fetch-feeds"
    logs.mkdir(parents=True)
    (logs / "4.log").write_text("fetching 12 feeds\nfeed 1 of 12: ok\nfeed 2 of 12: ok\n")

    def at(hours: float) -> str | None:
        return iso(now - timedelta(hours=hours))

    runs: list[dict[str, Any]] = [
        dict(
            id=1,
            event="collect-garbage",
            state="succeeded",
            scheduled_for=at(5.5),
            started_at=at(5.5),
            ended_at=at(5.49),
            exit_code=0,
        ),
        dict(
            id=2,
            event="fetch-feeds",
            state="succeeded",
            scheduled_for=at(5.25),
            started_at=at(5.25),
            ended_at=at(5.2),
            exit_code=0,
            checks=json.dumps([{"path": "feeds/today.json", "ok": True, "detail": "2048 bytes, checks passed"}]),
        ),
        dict(
            id=3,
            event="nightly-report",
            state="failed",
            scheduled_for=at(4),
            started_at=at(4),
            ended_at=at(3.9),
            exit_code=3,
            reason="exit code 3",
            output_tail="report: no data\n",
        ),
        dict(
            id=4,
            event="fetch-feeds",
            state="running",
            scheduled_for=at(1),
            started_at=at(0.75),
            due_by=at(0.5),
            flags="overdue",
            log_path=str(logs / "4.log"),
            pid=None,
        ),
        dict(
            id=5,
            event="publish",
            state="waiting",
            scheduled_for=at(2),
            late_at=at(1.5),
            waiting_reason="success(promote-to-test) is false: it has not run yet",
            flags="late",
        ),
        dict(
            id=6,
            event="archive",
            state="missed",
            scheduled_for=at(2.5),
            due_by=at(2.4),
            ended_at=at(2.4),
            reason="missed: window closed at 04:06 UTC while waiting (held)",
        ),
    ]
    for run in runs:
        run.setdefault("trigger", "schedule")
        run.setdefault("attempt", 1)
        run.setdefault("created_at", run["scheduled_for"])
        run.setdefault("needs_prepare", 0)
    store.insert_runs([{c: r.get(c) for c in RUN_COLUMNS} for r in runs])
    store.apply_statements(
        [
            (
                "INSERT INTO alerts (kind, event, run_id, route, message, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    ("failed", "nightly-report", 3, "night", "nightly-report failed: exit code 3", at(3.9), at(3.9)),
                    (
                        "overdue",
                        "fetch-feeds",
                        4,
                        "ops",
                        "fetch-feeds is overdue: still running at 06:00 UTC",
                        at(0.5),
                        at(0.5),
                    ),
                ],
            )
        ]
    )
    store.apply_statements(
        [("UPDATE events SET held = 1, held_by = 'alice (request 1)' WHERE name = ?", [("archive",)])]
    )
    assert store.path is not None
    return store.path
