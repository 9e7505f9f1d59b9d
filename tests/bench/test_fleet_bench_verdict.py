"""bench/fleet_bench.py judges its goals from what it measured: a row over 3 statements per
occurrence, or a missing 3-engine row, reads NOT MET."""

from __future__ import annotations

from bench.fleet_bench import Row, verdict


def row(kind: str, engines: int, statements: float, per_s: float = 2000.0) -> Row:
    return Row(kind, engines, 100, 100, per_s, None, None, statements, True, "100", [])


def test_the_statements_goal_is_met_only_when_every_row_is_at_most_3() -> None:
    rows = [row("call", 1, 1.1), row("call", 3, 2.9), row("true", 3, 3.0)]
    assert verdict(rows).endswith("worst 3.00 (MET)")
    rows.append(row("true", 1, 3.01))
    assert verdict(rows).endswith("worst 3.01 (NOT MET)")


def test_the_rate_goal_needs_its_3_engine_row() -> None:
    assert "2,000 (MET)" in verdict([row("call", 3, 1.0)])
    assert "999 (NOT MET)" in verdict([row("call", 3, 1.0, per_s=999.0)])
    assert "not measured (NOT MET)" in verdict([row("call", 1, 1.0)])
