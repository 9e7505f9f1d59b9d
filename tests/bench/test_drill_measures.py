"""The fleet drill's pool measure reads the commands' own ledger: three commands of the pool's
events running at once read NOT MET; two at once, an end at the very time of the next start, and
a command killed without its end line read MET."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.drill_measures import Measures, measure, read_ledger, render
from bench.drill_requests import Sent

POOL_ROW = "most holders of the pool of 2 at once (from the commands' own ledger)"


def ledger(tmp_path: Path, spans: Sequence[tuple[str, int, float, float | None]]) -> Path:
    """A ledger written as the commands write it: (event, run id, start, end or None if killed)."""
    lines = []
    for event, run_id, start, end in spans:
        head = f"{event},2026-01-01T00:00:00+00:00,{run_id},1,{1000 + run_id},{2000 + run_id}"
        lines.append((start, f"start,{head},{start:.9f},/logs/{run_id}.log"))
        if end is not None:
            lines.append((end, f"end,{head},{end:.9f},0"))
    path = tmp_path / "ledger.log"
    path.write_text("".join(text + "\n" for _, text in sorted(lines)))
    return path


def measured(path: Path, killed_at: dict[int, float] | None = None) -> Measures:
    lines = read_ledger(path)
    runs = {
        x.run_id: {"event": x.event, "state": "succeeded", "log_path": x.last, "output_tail": f"out-{x.run_id}",
                   "trigger": "schedule", "triggered_by": None, "ended_at": None, "reason": None}
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
