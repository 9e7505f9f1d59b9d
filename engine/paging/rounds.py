"""A round of sending: the due alerts it claims (several notifiers on one database), and what
it leaves behind: a deliveries row per attempt, each alert's next state, and the `delivery`
alert when a route keeps failing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from evman.engine.clock import Clock, iso
from evman.engine.paging.rules import Page, Policy, Target
from evman.engine.store import Store, StoreError

log = logging.getLogger("evman.alerts")


@dataclass(frozen=True)
class Attempt:
    """One message to one target, as run_once reports it."""

    alert_ids: tuple[int, ...]
    route: str | None
    target: str | None
    """Masked; None when the route could not be resolved at all."""
    outcome: str
    """"sent", "failed" or "held" (quiet hours; not a deliveries row)."""
    error: str | None
    at: datetime
    title: str
    digest: bool = False


@dataclass
class Send:
    """One message for one target, and how sending it went."""

    target: Target
    title: str
    body: str
    notify_type: str
    pages: list[Page]
    held: bool = False
    """It carries notices quiet hours held."""
    digest: bool = False
    ok: bool = False
    error: str | None = None


@dataclass
class Claim:
    """The due alerts one round took. With several notifiers (PostgreSQL) each is held: its
    next_attempt_at is `until`, a lease on the notifier's clock that the round renews while it
    sends, so no other notifier sends it meanwhile; the round's record sets the real next time.
    A notifier that dies leaves its claims due again when the lease ends, for any notifier.
    With one (SQLite) nothing is held: `until` is None."""

    store: Store
    clock: Clock
    lease_s: float
    alerts: list[dict[str, Any]] = field(default_factory=list)
    until: datetime | None = None
    _renewed_at: float = 0.0

    @classmethod
    def take(cls, store: Store, clock: Clock, now: datetime, lease_s: float) -> Claim:
        claim = cls(store, clock, lease_s)
        if store.several_engines:
            claim.until = now + timedelta(seconds=lease_s)
        claim.alerts = store.claim_due_alerts(now, claim.until or now)
        claim._renewed_at = time.monotonic()
        return claim

    def release(self) -> None:
        """Give the alerts back as they were, at once: the round failed before it sent anything."""
        if self.until is not None and self.alerts:
            try:
                self.store.release_alert_claims([(int(a["id"]), a["claimed_from"]) for a in self.alerts], self.until)
            except StoreError as exc:
                log.error(
                    "could not give back %d claimed alert(s); they are due again at %s: %s",
                    len(self.alerts),
                    iso(self.until),
                    exc,
                )

    def join(self, worker: threading.Thread, deadline: float) -> None:
        """Wait for `worker` until `deadline` (time.monotonic()), renewing the lease every third of it."""
        while worker.is_alive() and (left := deadline - time.monotonic()) > 0:
            worker.join(min(left, max(0.01, self._renewed_at + self.lease_s / 3 - time.monotonic())))
            if worker.is_alive() and time.monotonic() >= self._renewed_at + self.lease_s / 3:
                self._renew()

    def _renew(self) -> None:
        self._renewed_at = time.monotonic()
        if self.until is None or not self.alerts:
            return
        until = self.clock.now() + timedelta(seconds=self.lease_s)
        try:
            held = self.store.renew_alert_claims([int(a["id"]) for a in self.alerts], self.until, until)
        except StoreError as exc:
            log.error("could not renew the claim on %d alert(s) being sent: %s", len(self.alerts), exc)
            return
        if held < len(self.alerts):
            log.warning(
                "%d of %d alert(s) being sent changed meanwhile (acknowledged, paged again, or "
                "their claim ran out); another notifier may send them too",
                len(self.alerts) - held,
                len(self.alerts),
            )
        self.until = until


class Recording(Protocol):
    """What recording asks of the notifier."""

    store: Store
    policy: Policy
    max_failures: int


def title_of(page: Page) -> str:
    return f"[evman] {page.kind}: {page.alert['event']}"


def record(notifier: Recording, pages: Sequence[Page], sends: Sequence[Send], now: datetime) -> list[Attempt]:
    """Record a round: a deliveries row per attempt, each alert's next state, delivery alerts."""
    attempts = [_sent(send, now) for send in sends]
    for page in pages:
        attempts += _unsent(page, now)
    notifier.store.record_attempts([(page.id, page.rows, notifier.policy.changes_after(page, now)) for page in pages])
    for page in pages:
        _follow_up(notifier, page, now)
    return attempts


def _sent(send: Send, now: datetime) -> Attempt:
    outcome = "sent" if send.ok else "failed"
    for page in send.pages:
        number = int(page.alert["pages"]) if send.held else page.number
        page.rows.append(
            {
                "attempted_at": iso(now),
                "route": send.target.route,
                "target": send.target.label,
                "outcome": outcome,
                "error": send.error,
                "page": max(1, number),
                "held": send.held,
            }
        )
    ids = ", ".join(f"alert:{p.id}" for p in send.pages)
    what = "digest" if send.digest else send.title
    if send.ok:
        log.info("%s %s sent to route %s at %s", ids, what, send.target.route, send.target.label)
    else:
        log.warning(
            "%s %s not delivered to route %s at %s: %s", ids, what, send.target.route, send.target.label, send.error
        )
    return Attempt(
        tuple(p.id for p in send.pages),
        send.target.route,
        send.target.label,
        outcome,
        send.error,
        now,
        send.title,
        send.digest,
    )


def _unsent(page: Page, now: datetime) -> list[Attempt]:
    """Routes that could not be resolved (failed attempts) and notices newly held."""
    attempts = []
    for route, problem in page.problems:
        page.rows.append(
            {
                "attempted_at": iso(now),
                "route": route,
                "target": None,
                "outcome": "failed",
                "error": problem,
                "page": page.number,
                "held": False,
            }
        )
        attempts.append(Attempt((page.id,), route, None, "failed", problem, now, title_of(page)))
        log.warning("alert:%d %s of %s: %s", page.id, page.kind, page.alert["event"], problem)
    old = set(page.held_keys())
    for (route, label), until in page.held.items():
        if (route, label) not in old:
            attempts.append(
                Attempt((page.id,), route, label, "held", f"quiet hours until {iso(until)}", now, title_of(page))
            )
            log.info("alert:%d %s held for route %s until %s (quiet hours)", page.id, title_of(page), route, iso(until))
    return attempts


def _follow_up(notifier: Recording, page: Page, now: datetime) -> None:
    """Rounds that keep failing raise a `delivery` alert; once one gets through, it resolves."""
    alert = page.alert
    if alert["kind"] == "delivery":
        return
    failed = [row for row in page.rows if row["outcome"] == "failed"]
    failures = int(alert["failures"]) + 1
    if failed and failures == notifier.max_failures:
        last = failed[-1]
        where = f"route '{last['route']}'" if last["route"] else "its route"
        message = (
            f"alert:{page.id} ({alert['kind']} of {alert['event']}) could not be delivered to "
            f"{where} after {failures} attempts: {last['error']}. evman keeps retrying it."
        )
        notifier.store.raise_delivery_alert(
            str(alert["event"]), alert["run_id"], notifier.policy.defaults.driver, message, now
        )
        log.error("%s", message)
    elif (
        not failed
        and any(row["outcome"] == "sent" for row in page.rows)
        and int(alert["failures"]) >= notifier.max_failures
    ):
        notifier.store.resolve_alerts(str(alert["event"]), "delivery", now)
