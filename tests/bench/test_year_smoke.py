"""W8 (bench/year.py) at a tiny size: every row is measured and every target judged, so the
row cannot rot; the numbers themselves are the bench's, never a test's."""

from __future__ import annotations

from pathlib import Path

from bench import year
from bench.stats import Results


def test_a_year_runs_at_a_tiny_size(tmp_path: Path) -> None:
    results = Results()
    year.measure(results, year.SMOKE, tmp_path, lambda _text: None)
    year.judge(results, year.SMOKE)
    for horizons in year.SMOKE.horizons:
        assert results.median(year.W8, year.KEPT, f"log files after {horizons}x the horizon") > 0
    kept = results.median(year.W8, year.KEPT, "log files after 12x the horizon")
    assert results.median(year.W8, year.ALL, "log files after 12x the horizon") > 5 * kept  # retention deleted
    assert results.p99(year.W8, year.KEPT, "tick, housekeeping deleting") is not None
    assert results.median(year.W8, year.KEPT, year.HK_CPU) > 0
    judged = [t for t in results.targets if t.workload == year.W8]
    assert len(judged) >= 12 and all(t.met is not None for t in judged)
