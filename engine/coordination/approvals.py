"""Approval records: what runs.approval keeps (who was asked when, who decided what, with
which comment) and how a waiting run's approval reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from evman.engine.clock import iso, parse_iso
from evman.engine.model import Approval

APPROVED: Final = "approved"
REJECTED: Final = "rejected"
TIMED_OUT: Final = "timed_out"
VERDICTS: Final = (APPROVED, REJECTED, TIMED_OUT)


def asked(route: str | None, at: datetime) -> dict[str, Any]:
    """A new record: `route` was asked at `at`, nobody has decided yet."""
    return {"route": route, "asked_at": iso(at)}


def decided(record: Mapping[str, Any], verdict: str, by: str, at: datetime, comment: str | None) -> dict[str, Any]:
    out = {**record, "verdict": verdict, "by": by, "at": iso(at)}
    if comment:
        out["comment"] = comment
    return out


def is_pending(record: Mapping[str, Any] | None) -> bool:
    """A run asked for approval that nobody has decided on."""
    return record is not None and "asked_at" in record and "verdict" not in record


def asked_at(record: Mapping[str, Any] | None) -> datetime | None:
    return None if record is None else parse_iso(record.get("asked_at"))


def times_out_at(record: Mapping[str, Any], approval: Approval) -> datetime | None:
    start = asked_at(record)
    if start is None or approval.timeout_s is None:
        return None
    return start + timedelta(seconds=approval.timeout_s)


def waited_s(record: Mapping[str, Any]) -> float | None:
    """How long the decision took (asked to decided), for foresight's history of approval times."""
    start, end = asked_at(record), parse_iso(record.get("at"))
    return None if start is None or end is None else max(0.0, (end - start).total_seconds())


def to_json(record: Mapping[str, Any] | None) -> str | None:
    return None if not record else json.dumps(dict(record), ensure_ascii=False, sort_keys=True)


def from_json(text: str | None) -> dict[str, Any] | None:
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    return dict(found) if isinstance(found, dict) else None


def summary(record: Mapping[str, Any] | None) -> str | None:
    """One line for history and run details: "approved by ann (request 7) at ...: looks good"."""
    if not record:
        return None
    if is_pending(record):
        return f"awaiting approval from {record.get('route') or 'its driver'} since {record.get('asked_at')}"
    comment = f": {record['comment']}" if record.get("comment") else ""
    verdict = str(record.get("verdict")).replace("_", " ")
    return f"{verdict} by {record.get('by')} at {record.get('at')}{comment}"
