"""W6: the engine's memory and idle CPU with 100,000 events, and `evman list` start-up time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import catalogue

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _python() -> str:
    return sys.executable


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build_live(path: Path, n: int) -> None:
    """n events whose fire times spread over the next day, from an hour from now."""
    catalogue.build(path, n, base=datetime.now(UTC) + timedelta(hours=1))


def engine_idle(path: Path, idle_s: float = 4.0) -> tuple[float, float]:
    """Start `evman --no-ui`-like engine process on `path`; (RSS MB, idle CPU %) after it settles."""
    proc = subprocess.Popen(
        [_python(), "-m", "bench.engine_proc", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"engine process did not start: {line}{proc.stdout.read()}")
        time.sleep(1.0)
        cpu0, wall0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(idle_s)
        cpu1, wall1 = _cpu_s(proc.pid), time.monotonic()
        rss = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return rss, 100.0 * (cpu1 - cpu0) / (wall1 - wall0)


def _installed_env(pycache: Path) -> dict[str, str]:
    """The environment of an installed evman: bytecode cached (this sandbox sets
    PYTHONDONTWRITEBYTECODE, which makes every start compile evman's sources again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _time_command(argv: list[str], runs: int, env: dict[str, str]) -> float:
    subprocess.run(
        argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env
    )  # warm: writes the bytecode, fills the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def startup(db: Path, runs: int = 7) -> tuple[float, float]:
    """Median seconds of `evman list` on `db`, and of `python -c "import sqlite3"`, each
    after one warm-up run, with bytecode cached in a folder next to `db`."""
    evman = str(Path(_python()).parent / "evman")
    if not os.path.exists(evman):
        evman_argv = [_python(), "-m", "evman.console.cli"]
    else:
        evman_argv = [evman]
    env = _installed_env(db.parent / "pycache")
    list_s = _time_command([*evman_argv, "--db", str(db), "list"], runs, env)
    base_s = _time_command([_python(), "-c", "import sqlite3"], runs, env)
    return list_s, base_s


def heavy_modules_loaded(db: Path) -> list[str]:
    """Which of textual, apprise and sqlite_utils `evman list` imports (it should import none)."""
    code = (
        "import sys, io, contextlib\n"
        "from evman.console.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main(['--db', {str(db)!r}, 'list'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(','.join(m for m in ('textual', 'apprise', 'sqlite_utils') if m in sys.modules))\n"
    )
    out = subprocess.run([_python(), "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]
