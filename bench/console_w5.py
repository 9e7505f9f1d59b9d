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
_MEDIAN_MAX = re.compile(r"median ([0-9.]+) ms, max ([0-9.]+) ms")
_MS = re.compile(r"([0-9.]+) ms")

FIRST_PAINT = "first paint: rows on screen, from app start"
REFRESH_WAIT = "worst input wait during a refresh (ms)"


def available() -> bool:
    return SCRIPT.exists()


def run(db: Path, *, events: int | None = None, runs: int | None = None,
        timeout_s: float = 400.0) -> dict[str, Any]:
    """One run of the console bench on `db` (built on the first call, reused after);
    its JSON, or {"pending": why}."""
    if not available():
        return {"pending": "bench/console_bench.py does not exist yet"}
    argv = [sys.executable, str(SCRIPT), "--json", "--db", str(db)]
    if events is not None:
        argv += ["--events", str(events)]
    if runs is not None:
        argv += ["--runs", str(runs)]
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


def metrics(data: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(name, milliseconds, note) for every timing in the console bench's JSON."""
    out: list[tuple[str, float, str]] = []
    console = data.get("console", {})
    for key, value in console.items():
        if isinstance(value, (int, float)):
            out.append((_name(key), float(value), ""))
        elif isinstance(value, dict):
            for name, text in value.items():
                found = _MEDIAN_MAX.fullmatch(str(text))
                if found:
                    out.append((_name(f"{key}: {name}"), float(found[1]),
                                f"max {found[2]} ms"))
    for name, text in data.get("store", {}).items():
        found = _MS.fullmatch(str(text))
        if found:
            out.append((f"store read: {name}", float(found[1]), ""))
    return out


def key_medians(data: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Key label -> (median, max) ms."""
    out = {}
    for name, text in data.get("console", {}).get("key to screen", {}).items():
        found = _MEDIAN_MAX.fullmatch(str(text))
        if found and not name.startswith("worst input wait"):
            out[name] = (float(found[1]), float(found[2]))
    return out


def refresh_wait(data: dict[str, Any]) -> float | None:
    """The worst input wait seen while a live refresh ran (max over its rounds), ms."""
    text = data.get("console", {}).get("live refresh", {}).get(REFRESH_WAIT)
    found = _MEDIAN_MAX.fullmatch(str(text)) if text else None
    return float(found[2]) if found else None
