"""The several-engines drill at 30 seconds or so (the long form: `python -m bench.drill --faults 200`):
3 engines as real processes on one PostgreSQL, each in its own working directory and naming the
database its own way, twenty-four events (four sharing a pool of 2), a program writing requests with repeated dedupe keys in
interleaved transactions, and one fault of each kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drill import Plan, run_drill

pytest.importorskip("psycopg")

KINDS = ("kill", "machine", "pg_crash", "term", "stop", "terminate", "pg_restart", "term")


def test_faults_leave_every_occurrence_run_once_and_no_fenced_write(pg_server: object, tmp_path: Path) -> None:
    plan = Plan(faults=len(KINDS), seed=5, gap_s=(0.3, 0.8), settle_s=5.0, kinds=KINDS)
    outcome = run_drill(plan, tmp_path, say=lambda _text: None)
    found, measures = outcome.found, outcome.measures
    assert [f.kind for f in outcome.faults if f.kind != "revive"] == list(KINDS)
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
    assert measures.counts["commands"] > 50 and measures.counts["repeated keys"] > 3, measures.counts
    assert measures.run_twice == [] and measures.keys_twice == []
    assert measures.log_elsewhere == [] and measures.without_output == []
    assert measures.lost_after_end == [] and measures.overlaps == []
    assert measures.reboot_runs == measures.fleet_starts >= 1  # 2 when every engine was down at once
    assert measures.term_not_zero == [] and measures.unanswered == []
    assert measures.pool_most == 2 and measures.pool_over == [], measures.pool_over  # full, never more
    assert measures.met
