"""The rules of paging: when an alert's next page is due, where it goes, what quiet hours hold,
and what its row becomes after a round of sending. Pure: the notifier (engine/paging/notifier.py)
does the reading, sending and writing.

One "page" of an alert is one round of sending it to every target of its route (and of the
escalation route, once escalated); `pages` counts the finished ones. A page whose targets
partly failed is retried on the failed targets only, so a target that works never gets the
same page twice. A notice a route's quiet hours hold waits in `held` ([route, target] pairs)
and goes out, as a digest, when they end; holding does not hold up the other targets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from evman.engine.clock import iso, parse_iso
from evman.engine.model import ALERT_KINDS, Defaults, Route
from evman.engine.timing.durations import parse_time_of_day

REPEATING: Final = frozenset(kind for kind, facts in ALERT_KINDS.items() if facts.repeats)
"""Kinds the clock pages again every `repeat` until acknowledged, and escalate."""
ESCALATING: Final = REPEATING | {kind for kind, facts in ALERT_KINDS.items() if facts.escalates}
"""Kinds that escalate to the route's escalate_to (projected_late: paged again on news only)."""


@dataclass
class Target:
    """One notification service of a route, as the notifier built it for one round."""

    route: str
    label: str
    """Masked URL, unique within the route: what deliveries.target holds."""
    plugin: Any = None
    is_email: bool = False
    secrets: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.route, self.label)


@dataclass
class Page:
    """One alert's work in one round: its current page (if due) and its held notices."""

    alert: Mapping[str, Any]
    route: Route | None
    is_due: bool = False
    escalate_now: bool = False
    escalated_to: str | None = None
    targets: list[Target] = field(default_factory=list)
    """This page's sends now."""
    held_ready: list[Target] = field(default_factory=list)
    """Notices held earlier whose quiet hours are over: sent now, as a digest."""
    held: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """Notices still held: target key -> end of its quiet hours."""
    problems: list[tuple[str | None, str]] = field(default_factory=list)
    """(route, why) for routes that could not be resolved: failed attempts."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """deliveries rows of this round (plus "held": whether it carried a held notice)."""

    @property
    def id(self) -> int:
        return int(self.alert["id"])

    @property
    def kind(self) -> str:
        return str(self.alert["kind"])

    @property
    def number(self) -> int:
        """The page in flight or starting."""
        return int(self.alert["pages"]) + 1

    @property
    def is_stopped(self) -> bool:
        """Acknowledged or resolved after its first page: no more pages (held notices still go)."""
        return int(self.alert["pages"]) >= 1 and (self.alert["status"] != "open" or bool(self.alert["acknowledged_at"]))

    @property
    def is_open(self) -> bool:
        return self.alert["status"] == "open" and not self.alert["acknowledged_at"]

    def held_keys(self) -> list[tuple[str, str]]:
        return [(str(route), str(label)) for route, label in json.loads(self.alert["held"] or "[]")]


@dataclass(frozen=True)
class Policy:
    """[defaults], [routes] and the notifier's retry settings."""

    defaults: Defaults
    routes: Mapping[str, Route]
    retry_base_s: float = 30.0
    retry_max_s: float = 1800.0

    def route_name(self, alert: Mapping[str, Any]) -> str | None:
        return alert["route"] or self.defaults.driver

    def start(self, alert: Mapping[str, Any], now: datetime) -> Page:
        """The alert's Page for this round, before targets are planned."""
        name = self.route_name(alert)
        page = Page(alert, self.routes.get(name) if name else None)
        page.is_due = not page.is_stopped and (int(alert["pages"]) == 0 or _is_due(alert["next_page_at"], now))
        escalate_to = self.escalation_route(page)
        if page.is_due and escalate_to is not None:
            at = self.escalation_at(page)
            if alert["escalated_at"] or (at is not None and now >= at):
                page.escalate_now = not alert["escalated_at"]
                page.escalated_to = escalate_to
        return page

    def backoff(self, failures: int) -> timedelta:
        """Doubling from retry_base_s for each failed round in a row, capped at retry_max_s."""
        return timedelta(seconds=min(self.retry_base_s * 2 ** max(0, failures - 1), self.retry_max_s))

    def quiet_until(self, route_name: str, kind: str, now: datetime) -> datetime | None:
        route = self.routes.get(route_name)
        return None if route is None else quiet_until(route, kind, now, self.defaults.timezone)

    def escalation_route(self, page: Page) -> str | None:
        if page.route is None or page.kind not in ESCALATING:
            return None
        return page.route.escalate_to

    def escalation_at(self, page: Page) -> datetime | None:
        """When a not yet escalated alert escalates: escalate_after (default: repeat) after it was raised."""
        if (
            page.route is None
            or self.escalation_route(page) is None
            or page.alert["escalated_at"]
            or page.escalate_now
            or not page.is_open
        ):
            return None
        created = parse_iso(str(page.alert["created_at"]))
        assert created is not None
        after = page.route.escalate_after_s
        return created + timedelta(seconds=self.defaults.repeat_s if after is None else after)

    def reminder_at(self, page: Page, now: datetime) -> datetime | None:
        if page.kind not in REPEATING or not page.is_open or page.number - 1 >= self.defaults.max_repeats:
            return None
        return now + timedelta(seconds=self.defaults.repeat_s)

    def next_page_at(self, page: Page, now: datetime) -> datetime | None:
        """After a finished page: the next reminder or the escalation, whichever comes first."""
        escalation = self.escalation_at(page)
        when = [self.reminder_at(page, now), None if escalation is None else max(escalation, now)]
        return min((w for w in when if w is not None), default=None)

    def changes_after(self, page: Page, now: datetime) -> dict[str, Any]:
        """The alert row's new delivery columns after a round whose attempts are page.rows."""
        alert = page.alert
        failed = [row for row in page.rows if row["outcome"] == "failed"]
        sent = any(row["outcome"] == "sent" for row in page.rows)
        failures = int(alert["failures"]) + 1 if failed else 0 if sent else int(alert["failures"])
        changes: dict[str, Any] = {"attempts": int(alert["attempts"]) + len(page.rows), "failures": failures}
        if sent and not alert["delivered_at"]:
            changes["delivered_at"] = iso(now)
        if page.escalate_now:
            changes["escalated_at"] = iso(now)
        held = still_held(page, failed)
        changes["held"] = json.dumps(held) if held else None
        changes["held_since"] = (alert["held_since"] or iso(now)) if held else None
        page_failed = any(not row["held"] for row in failed)
        changes.update(self._page_changes(page, now, failed=page_failed, sent=sent))
        when: list[datetime | None] = [now + self.backoff(failures)] if failed else []
        when += page.held.values()
        if page.is_due and page_failed:
            when.append(self.escalation_at(page))  # a page stuck on a dead route still escalates on time
        elif not page.is_stopped:
            when.append(parse_iso(changes.get("next_page_at", alert["next_page_at"])))
        due = [w for w in when if w is not None]
        changes.update(pending=int(bool(due)), next_attempt_at=iso(min(due, default=None)))
        return changes

    def _page_changes(self, page: Page, now: datetime, *, failed: bool, sent: bool) -> dict[str, Any]:
        """A page is done when no target failed and something went out. One that only held
        (quiet hours) is tried again at the next reminder time without counting as a page."""
        if page.is_stopped:
            return {"next_page_at": None}
        if not page.is_due or failed:
            return {}
        if not sent:
            return {"next_page_at": iso(self.reminder_at(page, now))}
        return {"pages": page.number, "next_page_at": iso(self.next_page_at(page, now))}


def still_held(page: Page, failed: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Held notices not delivered yet: still quiet, or their digest failed (retried with backoff)."""
    failed_keys = {(row["route"], row["target"]) for row in failed}
    keys = list(page.held) + [t.key for t in page.held_ready if t.key in failed_keys]
    return [list(key) for key in dict.fromkeys(keys)]


def _is_due(stamp: str | None, now: datetime) -> bool:
    at = parse_iso(stamp)
    return at is not None and at <= now


def quiet_until(route: Route, kind: str, now: datetime, zone: str) -> datetime | None:
    """When the route's quiet hours end, if `now` is inside them and `kind` is not excepted."""
    if route.quiet_from is None or route.quiet_to is None or kind in route.quiet_except:
        return None
    return quiet_end(route.quiet_from, route.quiet_to, now, zone)


def quiet_end(start: str, end: str, now: datetime, zone: str) -> datetime | None:
    """The end (UTC) of the quiet period `start`-`end` (local "HH:MM"; end before start spans
    midnight) that contains `now`, or None when `now` is outside it."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    begins, ends = time(*parse_time_of_day(start)), time(*parse_time_of_day(end))
    clock = local.time().replace(tzinfo=None)
    if begins == ends:
        return None
    inside = begins <= clock < ends if begins < ends else (clock >= begins or clock < ends)
    if not inside:
        return None
    day = local.date() if clock < ends else local.date() + timedelta(days=1)
    return datetime.combine(day, ends, tzinfo=tz).astimezone(UTC)


def route_from_json(text: str) -> Route:
    """A route as catalog.save stored it (dataclasses.asdict)."""
    data: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in json.loads(text).items()
        if k in Route.__dataclass_fields__
    }
    return Route(**data)


def defaults_from_json(text: str | None) -> Defaults:
    data = json.loads(text) if text else {}
    return Defaults(**{k: v for k, v in data.items() if k in Defaults.__dataclass_fields__})
