"""Output checks: a run only succeeds when the files it should make exist, are current and look right."""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from evman.engine.model import OutputCheck

READ_LIMIT: Final = 16 * 1024 * 1024
WHOLE_SECONDS_SLACK_S: Final = 2.0
"""File systems that keep whole (FAT: even) seconds: a file written in the same two seconds
as the run started may carry a time before it."""


def _kernel_tick_s() -> float:
    """How far a file's time can lag the clock that stamped started_at: Linux stamps files
    from its coarse clock (one scheduler tick: 4 ms at HZ=250), not the fine one."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", 5 if sys.platform == "linux" else None)
    try:
        return max(0.001, time.clock_getres(coarse)) if coarse is not None else 0.01
    except OSError:
        return 0.01


FS_TICK_S: Final = _kernel_tick_s()


@dataclass(frozen=True)
class CheckResult:
    path: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_outputs(
    checks: tuple[OutputCheck, ...],
    cwd: str,
    started_at: datetime | None,
    now: datetime,
    *,
    since_ns: int | None = None,
) -> list[CheckResult]:
    """since_ns: the file-system time (st_mtime_ns of a file stamped just before the command
    started) that `fresh` compares with; without it, started_at less the file system's tick."""
    ref = _Reference(started_at, since_ns)
    return [result for check in checks for result in _verify_one(check, cwd, ref, now)]


@dataclass(frozen=True)
class _Reference:
    """When the run started, for `fresh`: by the file system's own clock when known."""

    started_at: datetime | None
    since_ns: int | None

    def is_stale(self, st: os.stat_result) -> bool:
        whole_seconds = st.st_mtime_ns % 1_000_000_000 == 0
        if self.since_ns is not None:
            slack_ns = int(WHOLE_SECONDS_SLACK_S * 1e9) if whole_seconds else 0
            return st.st_mtime_ns < self.since_ns - slack_ns
        if self.started_at is None:
            return False
        slack = WHOLE_SECONDS_SLACK_S if whole_seconds else FS_TICK_S
        return st.st_mtime < self.started_at.timestamp() - slack


def first_failure(results: list[CheckResult]) -> CheckResult | None:
    return next((r for r in results if not r.ok), None)


def _verify_one(check: OutputCheck, cwd: str, ref: _Reference, now: datetime) -> list[CheckResult]:
    pattern = check.path if os.path.isabs(check.path) else str(Path(cwd) / check.path)
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.exists(pattern) else [])
    if not matches:
        return [CheckResult(check.path, False, f"output {check.path} is missing")]
    return [_check_file(check, m, _shown(check, m, cwd), ref, now) for m in matches]


def _shown(check: OutputCheck, match: str, cwd: str) -> str:
    """The file as the definitions name it: the path as written, or a glob's match relative to cwd."""
    if not glob.has_magic(check.path):
        return check.path
    return match if os.path.isabs(check.path) else os.path.relpath(match, cwd)


def _check_file(check: OutputCheck, path: str, shown: str, ref: _Reference, now: datetime) -> CheckResult:
    try:
        st = os.stat(path)
    except OSError as exc:
        return CheckResult(shown, False, f"output {shown} cannot be read: {exc.strerror}")
    problem = _metadata_problem(check, shown, st, ref, now) or _content_problem(check, path, shown)
    if problem:
        return CheckResult(shown, False, problem)
    return CheckResult(shown, True, f"{st.st_size} bytes, checks passed")


def _metadata_problem(check: OutputCheck, path: str, st: os.stat_result, ref: _Reference, now: datetime) -> str | None:
    """`path` is the name to show."""
    if check.fresh and ref.is_stale(st):
        zone = ref.started_at.tzinfo if ref.started_at else now.tzinfo
        mtime = datetime.fromtimestamp(st.st_mtime, zone).isoformat(timespec="milliseconds")
        return f"output {path} is stale: modified {mtime}, before the run started"
    if check.min_size is not None and st.st_size < check.min_size:
        return f"output {path} is {st.st_size} bytes, expected at least {check.min_size}"
    if check.max_age_s is not None and now.timestamp() - st.st_mtime > check.max_age_s:
        age = int(now.timestamp() - st.st_mtime)
        return f"output {path} is {age} s old, expected at most {int(check.max_age_s)} s"
    return None


def _content_problem(check: OutputCheck, path: str, shown: str) -> str | None:
    if check.contains is None and not check.json:
        return None
    try:
        with open(path, "rb") as fh:
            text = fh.read(READ_LIMIT).decode("utf-8", "replace")
    except OSError as exc:
        return f"output {shown} cannot be read: {exc.strerror}"
    if check.contains is not None and re.search(check.contains, text) is None:
        return f"output {shown} does not contain /{check.contains}/"
    if check.json:
        try:
            json.loads(text)
        except ValueError as exc:
            return f"output {shown} is not valid JSON: {exc}"
    return None
