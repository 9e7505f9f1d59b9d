"""The fleet drill's pool measure reads the commands' own ledger: three commands of the pool's
events running at once read NOT MET; two at once, an end at the very time of the next start, and
a command killed without its end line read MET; a kill ends only the command that had its pid
then (not a later one the pid went to); a command that started after its run was recorded
ended reads NOT MET."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.drill_measures import Measures, measure, read_ledger, render
from bench.drill_requests import Sent
from evman.engine.clock import iso

POOL_ROW = "most holders of the pool of 2 at once (from the commands' own ledger)"


def ledger(
    tmp_path: Path, spans: Sequence[tuple[str, int, float, float | None]], pid_of: dict[int, int] | None = None
) -> Path:
    """A ledger written as the commands write it: (event, run id, start, end or None if killed);
    a command's pid is 1000 + its run id unless `pid_of` says."""
    lines = []
    for event, run_id, start, end in spans:
        pid = (pid_of or {}).get(run_id, 1000 + run_id)
        head = f"{event},2026-01-01T00:00:00+00:00,{run_id},1,{pid},{2000 + run_id}"
        lines.append((start, f"start,{head},{start:.9f},/logs/{run_id}.log"))
        if end is not None:
            lines.append((end, f"end,{head},{end:.9f},0"))
    path = tmp_path / "ledger.log"
    path.write_text("".join(text + "\n" for _, text in sorted(lines)))
    return path


def measured(
    path: Path, killed_at: dict[int, float] | None = None, lost_at: dict[int, float] | None = None
) -> Measures:
    """`lost_at`: run id -> when its run was recorded lost (Unix seconds)."""
    lines = read_ledger(path)
    lost = lost_at or {}
    runs = {
        x.run_id: {"event": x.event, "state": "lost" if x.run_id in lost else "succeeded", "log_path": x.last,
                   "output_tail": f"out-{x.run_id}", "trigger": "schedule", "triggered_by": None,
                   "ended_at": iso(datetime.fromtimestamp(lost[x.run_id], UTC)) if x.run_id in lost else None,
                   "reason": None}
        for x in lines if x.kind == "start"
    }  # fmt: skip
    return measure(runs, [], lines, Sent(), killed_at=killed_at or {}, fleet_starts=0, term_codes=[])


def pool_row(found: Measures) -> str:
    return dict(render(found))[POOL_ROW]


def test_three_overlapping_holders_of_the_pool_of_2_read_not_met(tmp_path: Path) -> None:
    found = measured(ledger(tmp_path, [("p0", 1, 10.0, 12.0), ("p1", 2, 10.5, 11.5), ("p2", 3, 11.0, 13.0)]))
    assert found.pool_most == 3 and not found.met
    assert found.pool_over == ["3 holders of warehouse at 11.000: p0 run 1, p1 run 2, p2 run 3"]
    assert pool_row(found).endswith("goal <= 2   NOT MET")
    assert found.counts["pool commands"] == 3


def test_a_killed_holder_without_its_end_line_still_counts_until_it_was_killed(tmp_path: Path) -> None:
    spans = [("p0", 1, 10.0, None), ("p1", 2, 10.5, 11.5), ("p2", 3, 11.0, 13.0)]
    assert measured(ledger(tmp_path, spans)).pool_most == 3  # never ended: held it throughout
    found = measured(ledger(tmp_path, spans), killed_at={1001: 10.8})
    assert found.pool_most == 2 and found.met


def test_two_holders_and_a_slot_passed_on_at_the_same_instant_read_met(tmp_path: Path) -> None:
    spans = [("p0", 1, 10.0, 12.0), ("p1", 2, 10.5, 11.0), ("p2", 3, 11.0, 13.0), ("s0", 4, 11.5, 11.8)]
    found = measured(ledger(tmp_path, spans))
    assert found.pool_most == 2 and found.pool_over == [] and found.met
    assert pool_row(found).startswith("2 over 3 commands of 4 events") and pool_row(found).endswith("goal <= 2   MET")


def test_a_kill_does_not_end_a_later_command_that_got_the_killed_pid(tmp_path: Path) -> None:
    """Pids wrap around in a drill on a busy machine: run 4's command got the pid of run 1's,
    killed at 10.8, and was never seen to end (its run was recorded lost at 16.0). Ended at
    the earlier kill, it ended before it began and was counted holding for ever: with runs 5
    and 6 that made 3 holders that never were."""
    spans = [("p0", 1, 10.0, None), ("p1", 2, 10.5, 11.5), ("p3", 4, 14.0, None), ("p1", 5, 16.5, 17.5)]
    spans += [("p2", 6, 17.0, 18.0)]
    found = measured(ledger(tmp_path, spans, pid_of={4: 1001}), killed_at={1001: 10.8}, lost_at={4: 16.0})
    assert found.pool_most == 2 and found.pool_over == []
    assert pool_row(found).endswith("goal <= 2   MET")


def test_a_command_that_started_after_its_run_was_recorded_ended_reads_not_met(tmp_path: Path) -> None:
    """Run 3 was recorded lost at 11.0 (its slot given back) and its command started at 11.2: it
    ran without a slot, to an end no one saw."""
    spans = [("p0", 1, 10.0, 12.0), ("p1", 2, 11.5, 13.0), ("p2", 3, 11.2, None)]
    found = measured(ledger(tmp_path, spans), lost_at={3: 11.0})
    assert found.pool_over[0] == "p2 run 3: its command started at 11.200, 0.200 s after its run was recorded lost"
    assert found.pool_most == 3 and not found.met
    assert pool_row(found).endswith("NOT MET")
