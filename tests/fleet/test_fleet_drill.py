"""The several-engines drill at 30 seconds (the long form: `python -m bench.drill --faults 200`):
3 engines as real processes on one PostgreSQL, second-level schedules and chains, faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drill import Plan, run_drill

pytest.importorskip("psycopg")


def test_faults_leave_every_occurrence_run_once_and_no_fenced_write(pg_server: object, tmp_path: Path) -> None:
    plan = Plan(faults=8, seed=5, gap_s=(0.3, 0.8), settle_s=4.0)
    found, faults = run_drill(plan, tmp_path, say=lambda _text: None)
    assert len([f for f in faults if f.kind != "revive"]) == 8
    assert sum(found.executions.values()) > 20, "the workload ran"
    assert found.missing == [] and found.doubled == []
    assert found.running_without_process == 0
    assert found.lost_without_alert == 0
    assert found.fenced_writes_accepted == 0
    assert found.stops_hung == 0
    assert found.stops_fenced + found.stops_continued == found.stops
    assert found.survivor_stall_s < 3 * plan.tick_s, found.survivor_stall_s
    assert all(s <= 4 * plan.tick_s + 0.5 for s in found.crash_takeover_s), found.crash_takeover_s
    assert found.problems == []
