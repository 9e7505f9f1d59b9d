"""Every benchmark workload at a tiny size, so that bench/ cannot rot.

The numbers are not checked (this machine is shared and tiny sizes say nothing); that each
workload runs to the end, records what it should and keeps its own promises (every run ran
exactly once) is. The peers need the bench dependency group (`uv run --group bench pytest
tests/test_bench_smoke.py`); without it their part is skipped, evman's never is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import console_w5, peers
from bench.run import APS_USER, APS_WAL, EVMAN, SMOKE, Bench, report
from bench.stats import Results

REPO = Path(__file__).resolve().parents[2]


def median(r: Results, workload: str, system: str, name: str) -> float:
    """The row's median, which must have been measured."""
    value = r.median(workload, system, name)
    assert value is not None, f"{workload} {system}: {name} was not measured"
    return value


def p99(r: Results, workload: str, system: str, name: str) -> float:
    value = r.p99(workload, system, name)
    assert value is not None, f"{workload} {system}: {name} has no p99"
    return value


def _bench(tmp_path: Path, only: set[str], *, with_peers: bool) -> Bench:
    bench = Bench(SMOKE, 1, only, tmp_path, quick=True, say=lambda _text: None, with_peers=with_peers)
    bench.run()
    return bench


def test_evmans_own_workloads_run_at_a_tiny_size(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"limits", "W1", "W2", "W3", "W4", "W6"}, with_peers=False)
    r = bench.results
    assert median(r, "machine", "sqlite", "commits, WAL+NORMAL") > 0
    assert median(r, "machine", "os", "spawn true, 2 at a time") > 0
    for workload in ("W1", "W2"):
        assert median(r, workload, EVMAN, "ran exactly once") == 1.0, workload
        assert median(r, workload, EVMAN, "throughput") > 0, workload
    assert r.p99("W1", EVMAN, "lateness, job's own clock") is not None
    # a command's lateness: when its supervisor saw it start, never the tick's runs.started_at
    assert r.p99("W2", EVMAN, "lateness, job's own clock") is not None
    for n in SMOKE.catalogues:
        for name in ("tick, 10 due", "tick reaping 10", "idle tick"):
            assert median(r, "W3", f"{EVMAN} @{n:,}", name) > 0, name
            assert p99(r, "W3", f"{EVMAN} @{n:,}", name) >= median(r, "W3", f"{EVMAN} @{n:,}", name)
    assert median(r, "W4", EVMAN, f"due to last finished, {SMOKE.layers}x{SMOKE.width}") > 0
    assert median(r, "W6", f"{EVMAN} @{SMOKE.footprint_events:,}", "engine RSS") > 0
    assert median(r, "W6", EVMAN, "`evman list` start-up") > 0
    assert "W6: `evman list` imports none of textual, apprise, sqlite_utils" in r.notes
    judged = {(t.workload, t.text.split(" ")[0]) for t in r.targets}
    assert {"W2", "W3", "W6"} <= {w for w, _ in judged}
    text = report(r, "smoke")
    assert "Targets (ratios from this run):" in text and "W4" in text


@pytest.mark.skipif(not peers.has_peers(), reason="peers need the bench group: uv run --group bench")
def test_the_peers_run_the_same_workloads(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"W1", "W2", "W4"}, with_peers=True)
    r = bench.results
    for system in (APS_WAL, APS_USER, "Huey SqliteHuey", "schedule (memory)"):
        assert median(r, "W1", system, "ran exactly once") == 1.0, system
        assert r.p99("W1", system, "lateness, job's own clock") is not None, system
    for system in (APS_WAL, "Huey SqliteHuey"):
        assert median(r, "W2", system, "ran exactly once") == 1.0, system
    assert median(r, "W4", "Huey SqliteHuey chords", f"due to last finished, {SMOKE.layers}x{SMOKE.width}") > 0
    judged = [t.text for t in r.targets if t.workload == "W1" and t.met is not None]
    for peer in (APS_WAL, APS_USER):  # both setups: throughput, and lateness against 0.2x and 0.1x
        assert sum(peer in text for text in judged) == 3, (peer, judged)


@pytest.mark.skipif(not console_w5.available(), reason="bench/console_bench.py is not written yet")
def test_the_console_workload_runs(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"W5"}, with_peers=False)
    assert not [n for n in bench.results.notes if n.startswith("W5 pending")], bench.results.notes
    assert any(t.workload == "W5" and t.text.startswith("first paint") for t in bench.results.targets)


def test_the_command_line_prints_the_table(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--reps", "1", "--only", "limits"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "commits, WAL+NORMAL" in out.stdout and "min–max" in out.stdout


def test_the_foresight_workload_runs_and_judges_every_row(tmp_path: Path) -> None:
    bench = _bench(tmp_path, {"W7"}, with_peers=False)
    r = bench.results
    w7 = [t for t in r.targets if t.workload == "W7"]
    assert all(t.met is not None for t in w7), w7
    # the nights are seeded and run on a fake clock, not timed: these verdicts hold on any
    # machine (false pages are judged per 30 nights: at this size one would read as 30)
    nights = {t.text.split(" ")[0]: t.met for t in w7}
    assert nights["misses"] and nights["projected_late"], w7
    for kind in ("slow", "held", "never", "down", "retry"):
        assert sum(t.text.startswith(f"{kind}: ") for t in w7) == 2, kind
    assert sum(t.text.startswith("calibration ") for t in w7) == 6
    assert any(t.text.startswith("false projected_late pages") for t in w7)
    assert any(t.text.startswith("at_risk on met deadlines") for t in w7)
    assert any(t.text.startswith("the stage's recompute of 200 events") for t in w7)
    assert median(r, "W7", "evman foresight", "lead: deadline - first page, per injected miss") > 60
    assert p99(r, "W7", "evman foresight @200", "recompute, CPU time") > 0
    assert p99(r, "W7", "evman foresight, the stage @200", "recompute, CPU time") > 0
    assert median(r, "W7", "evman foresight, DAG, held", "misses paged before the deadline") == 100.0
    assert any(n.startswith("W7 leads (min): ") for n in r.notes)
    assert any(n.startswith("W7 thresholds at_risk 70%/40%") and "(chosen)" in n for n in r.notes)
