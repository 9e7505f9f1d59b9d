"""W5: first paint from process start, in a pseudo-terminal: evman's console against a minimal
Textual app (bench/minimal_textual.py), measured in pairs in the same run, both as an installed
program starts: with its bytecode cached (this sandbox sets PYTHONDONTWRITEBYTECODE, which
would make every start compile its imports again; an installed package has its .pyc files)."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from bench.minimal_textual import MARKER

REPO = Path(__file__).resolve().parent.parent
MINIMAL = REPO / "bench" / "minimal_textual.py"


def installed_env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"PYTHONPYCACHEPREFIX": str(pycache), "TERM": "xterm-256color", "EVMAN_OPERATOR": "bench"}
    return env


def evman_argv(db: Path) -> list[str]:
    script = Path(sys.executable).parent / "evman"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "evman.console.cli"]
    return [*argv, "--db", str(db), "--readonly"]


def paint_in_pty(
    argv: list[str], marker: bytes, size: tuple[int, int], env: dict[str, str], timeout_s: float = 60.0
) -> float:
    """Milliseconds from spawning `argv` in a pseudo-terminal of `size` until the terminal
    receives `marker` (the first frame with it); then ctrl+q, and the process is waited for."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, start_new_session=True)
    os.close(slave)
    seen, shown = b"", None
    try:
        while shown is None and time.perf_counter() - started < timeout_s and proc.poll() is None:
            if select.select([master], [], [], 0.05)[0]:
                seen += os.read(master, 1 << 16)  # looked at whole: a frame's read can be longer than what is kept
                shown = time.perf_counter() if marker in seen else None
                seen = seen[-8192:]
        if shown is None:
            raise TimeoutError(f"bench: {argv[0]} showed no {marker.decode()} in {timeout_s:.0f} s: {seen[-300:]!r}")
        os.write(master, b"\x11")  # ctrl+q
        _drain(master, proc, 10.0)
    finally:
        if proc.poll() is None:
            proc.kill()  # ours, by its pid
            proc.wait()
        os.close(master)
    return (shown - started) * 1000


def _drain(master: int, proc: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 1 << 16)
            except OSError:
                break
    proc.wait(timeout=max(0.1, deadline - time.monotonic()))


def paired(
    db: Path, *, pairs: int, first_name: str = "job-00000", size: tuple[int, int] = (200, 60)
) -> dict[str, list[float]]:
    """`pairs` first paints of each, alternating (the minimal app first), after one of each to
    fill the bytecode cache: {"evman": [ms...], "minimal": [ms...]}."""
    out: dict[str, list[float]] = {"evman": [], "minimal": []}
    with tempfile.TemporaryDirectory(prefix="evman-pyc-") as cache:
        env = installed_env(Path(cache))
        runs = {
            "minimal": ([sys.executable, str(MINIMAL)], MARKER.encode()),
            "evman": (evman_argv(db), first_name.encode()),
        }
        for argv, marker in runs.values():
            paint_in_pty(argv, marker, size, env)
        for _ in range(pairs):
            for name, (argv, marker) in runs.items():
                out[name].append(paint_in_pty(argv, marker, size, env))
    return out
