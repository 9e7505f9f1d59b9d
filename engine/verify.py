"""Output checks: a run only succeeds when the files it should make exist, are current and look right."""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from engine.model import OutputCheck

READ_LIMIT: Final = 16 * 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    path: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_outputs(checks: tuple[OutputCheck, ...], cwd: str, started_at: datetime | None,
                   now: datetime) -> list[CheckResult]:
    return [result for check in checks for result in _verify_one(check, cwd, started_at, now)]


def first_failure(results: list[CheckResult]) -> CheckResult | None:
    return next((r for r in results if not r.ok), None)


def _verify_one(check: OutputCheck, cwd: str, started_at: datetime | None,
                now: datetime) -> list[CheckResult]:
    pattern = check.path if os.path.isabs(check.path) else str(Path(cwd) / check.path)
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
        [pattern] if os.path.exists(pattern) else [])
    if not matches:
        return [CheckResult(check.path, False, f"output {check.path} is missing")]
    return [_check_file(check, m, _shown(check, m, cwd), started_at, now) for m in matches]


def _shown(check: OutputCheck, match: str, cwd: str) -> str:
    """The file as the definitions name it: the path as written, or a glob's match relative to cwd."""
    if not glob.has_magic(check.path):
        return check.path
    return match if os.path.isabs(check.path) else os.path.relpath(match, cwd)


def _check_file(check: OutputCheck, path: str, shown: str, started_at: datetime | None,
                now: datetime) -> CheckResult:
    try:
        st = os.stat(path)
    except OSError as exc:
        return CheckResult(shown, False, f"output {shown} cannot be read: {exc.strerror}")
    problem = (_metadata_problem(check, shown, st, started_at, now)
               or _content_problem(check, path, shown))
    if problem:
        return CheckResult(shown, False, problem)
    return CheckResult(shown, True, f"{st.st_size} bytes, checks passed")


def _metadata_problem(check: OutputCheck, path: str, st: os.stat_result,
                      started_at: datetime | None, now: datetime) -> str | None:
    """`path` is the name to show."""
    if check.fresh and started_at is not None and st.st_mtime < started_at.timestamp() - 0.001:
        mtime = datetime.fromtimestamp(st.st_mtime, started_at.tzinfo).isoformat(timespec="seconds")
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
