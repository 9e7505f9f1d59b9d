"""W5: the console, measured by bench/console_bench.py (the console developer's), run as a
subprocess so that Textual stays out of the engine benchmarks' process.

console_bench.py builds a database of `--events` events and `--runs` runs (10,000 and
1,000,000 by default), opens the real app headless and prints its numbers with `--json`:
{"console": {"first paint: ...": ms, "key to screen": {key: "median X ms, max Y ms"},
"live refresh": {...}}, "store": {...}}. Here they become table rows and targets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "console_bench.py"
_SPREAD = re.compile(r"median ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms")
_MS = re.compile(r"([0-9.]+) ms")

FIRST_PAINT = "first paint: rows on screen, from app start"
ALL_ROWS = "every row in the table, from app start"
PROCESS_PAINT = "process: first paint from process start (pty, imports included)"
REFRESH_WAIT = "worst input wait during a refresh (ms)"
KEY_TARGET_MS = 100.0


def available() -> bool:
    return SCRIPT.exists()


def run(
    db: Path, *, events: int | None = None, runs: int | None = None, quick: bool = False, timeout_s: float = 400.0
) -> dict[str, Any]:
    """One run of the console bench on `db` (built on the first call, reused after);
    its JSON, or {"pending": why}."""
    if not available():
        return {"pending": "bench/console_bench.py does not exist yet"}
    argv = [sys.executable, str(SCRIPT), "--json", "--db", str(db)]
    if events is not None:
        argv += ["--events", str(events)]
    if runs is not None:
        argv += ["--runs", str(runs)]
    if quick:
        argv.append("--quick")
    try:
        out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"pending": f"bench/console_bench.py ran past {timeout_s:.0f} s"}
    if out.returncode != 0:
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
        return {"pending": f"bench/console_bench.py exited {out.returncode}: {tail}"}
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"pending": "bench/console_bench.py --json printed no JSON: " + out.stdout[-200:]}
    return data if isinstance(data, dict) else {"pending": "bench/console_bench.py's JSON is not an object"}


def _name(key: str) -> str:
    return key.replace(" (ms from app start)", ", from app start").replace(" (ms)", "")


def _spread(text: object) -> tuple[float, float, float] | None:
    """(median, p99, max) from "median X ms, p99 Y ms, max Z ms"."""
    found = _SPREAD.fullmatch(str(text))
    return (float(found[1]), float(found[2]), float(found[3])) if found else None


def metrics(data: dict[str, Any]) -> list[tuple[str, float, str, float | None]]:
    """(name, milliseconds, note, p99) for every timing in the console bench's JSON: a timing
    taken many times in a repetition has its median and p99 (the table prints them side by
    side); one taken once (first paint) has no p99."""
    out: list[tuple[str, float, str, float | None]] = []
    console = data.get("console", {})
    for key, value in console.items():
        if isinstance(value, (int, float)):
            out.append((_name(key), float(value), "", None))
        elif isinstance(value, dict):
            for name, text in value.items():
                found = _spread(text)
                if found:
                    out.append((_name(f"{key}: {name}"), found[0], f"max {found[2]} ms", found[1]))
    for name, text in data.get("store", {}).items():
        found = _spread(text)
        if found:
            out.append((f"store read: {name}", found[0], "", found[1]))
    return out


def key_spreads(data: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Key label -> (median, p99) ms."""
    out = {}
    for name, text in data.get("console", {}).get("key to screen", {}).items():
        found = _spread(text)
        if found and not name.startswith("worst input wait"):
            out[name] = (found[0], found[1])
    return out


def refresh_wait(data: dict[str, Any]) -> float | None:
    """The worst input wait seen while a live refresh ran (max over its rounds), ms."""
    text = data.get("console", {}).get("live refresh", {}).get(REFRESH_WAIT)
    found = _spread(text) if text else None
    return found[2] if found else None


def judge(results: Any, runs: list[dict[str, Any]], system: str) -> None:
    """W5's targets from every repetition's JSON: keys judged on the slowest key's median in
    the worst repetition, with its p99 beside it (a tail within 2x the target is said, not
    failed); first paint before the whole table; a refresh that never blocks input."""
    median = lambda name: results.median("W5", system, name)  # noqa: E731
    paint, every, process = median(FIRST_PAINT), median(ALL_ROWS), median(PROCESS_PAINT)
    if paint is not None:
        results.target("W5", "first paint < 1 s (app start)", f"{paint:.0f} ms", paint < 1000)
    if paint is not None and every is not None:
        results.target(
            "W5",
            "rows on screen before every row is loaded (paint the visible rows first)",
            f"{paint:.0f} ms vs {every:.0f} ms",
            paint < every,
        )
    if process is not None:
        results.target(
            "W5", "first paint from process start < 2 s (pty, imports included)", f"{process:.0f} ms", process < 2000
        )
    worst: tuple[float, float, str] | None = None
    for data in runs:
        for key, (key_median, key_p99) in key_spreads(data).items():
            if worst is None or key_median > worst[0]:
                worst = (key_median, key_p99, key)
    if worst is not None:
        tail = max(p99 for d in runs for _m, p99 in key_spreads(d).values())
        results.target(
            "W5",
            f"key press to updated screen < {KEY_TARGET_MS:.0f} ms (slowest key's median, worst rep; p99 within 2x)",
            f"{worst[0]:.0f} ms ({worst[2]}, its p99 {worst[1]:.0f} ms; worst p99 of any key {tail:.0f} ms)",
            worst[0] < KEY_TARGET_MS and tail < 2 * KEY_TARGET_MS,
        )
    waits = [w for d in runs if (w := refresh_wait(d)) is not None]
    if waits:
        results.target(
            "W5",
            "a live refresh never blocks input (worst input wait < 100 ms)",
            f"{max(waits):.0f} ms",
            max(waits) < 100,
        )
