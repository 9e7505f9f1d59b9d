"""Paging the driver: the notifier thread that delivers alert rows through Apprise.

The engine writes alert rows; the notifier, in its own thread with its own Store, sends the
due ones (pending = 1 and next_attempt_at due; with several engines each round claims them
first, so each page attempt goes out once across them), records every attempt in `deliveries`,
retries failures with backoff, pages unacknowledged alerts again and escalates them, and
sends what quiet hours held as one digest. The rules for all of that are engine/paging/rules.py;
this module plans and sends; engine/paging/apprise_send.py talks to Apprise (its only importer) and
engine/paging/rounds.py records what a round did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from evman.engine.clock import Clock, SystemClock, parse_iso
from evman.engine.definitions import spec_from_json
from evman.engine.model import EventSpec
from evman.engine.paging.apprise_send import SCRUBBER, build_targets, masked, send_message
from evman.engine.paging.messages import Messages
from evman.engine.paging.rounds import Attempt, Claim, Send, record
from evman.engine.paging.rules import Page, Policy, Target, defaults_from_json, route_from_json
from evman.engine.store import Store, StoreError, open_store
from evman.engine.timing.durations import format_duration

log = logging.getLogger("evman.alerts")

ERROR_CHARS: Final = 300


class Notifier:
    """Delivers alerts in its own thread. Tests call run_once(now) with a FakeClock instead."""

    def __init__(
        self,
        db: str | Path | Store,
        clock: Clock | None = None,
        *,
        poll_s: float = 1.0,
        retry_base_s: float = 30.0,
        retry_max_s: float = 1800.0,
        max_failures: int = 5,
        timeout_s: float = 10.0,
        attempt_cap_s: float = 30.0,
        throttle_s: float | None = None,
        claim_s: float = 60.0,
    ) -> None:
        """`timeout_s` bounds each connection and read of a target; `attempt_cap_s` one whole
        message to one target, whatever the plugin does. After `max_failures` rounds in a row
        with a failed attempt a `delivery` alert goes to [defaults].driver; retrying goes on.
        `throttle_s`: least seconds between two messages to one target in a round; None keeps
        Apprise's per-service rate (5.5 s for most, e.g. email; none for json://). `claim_s`:
        with several notifiers on one database, how long a round holds the due alerts it took
        (on this clock, renewed while it sends): one that dies is retried by another after it."""
        self._owns_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else open_store(db, create=False)
        self.clock = clock or SystemClock()
        self.poll_s = poll_s
        self.max_failures = max_failures
        self.timeout_s = timeout_s
        self.attempt_cap_s = attempt_cap_s
        self.throttle_s = throttle_s
        self.claim_s = claim_s
        self.policy = Policy(defaults_from_json(None), {}, retry_base_s, retry_max_s)
        self._defs_version = -1
        self._specs: dict[str, EventSpec | None] = {}
        self._targets_now: dict[str | None, list[Target] | str] = {}
        self._scrubber = SCRUBBER.install()
        self._round = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ------------------------------------------------------------------

    def start(self) -> Notifier:
        self._thread = threading.Thread(target=self._loop, name="evman-notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait_s: float = 5.0) -> None:
        """Stop the thread, then send what is due in one last round, each send bounded by
        `wait_s`: the alerts an engine raises in its last tick go out before the process
        exits. What still fails stays pending for the next start; nothing is dropped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait_s)
            if self._thread.is_alive():
                log.warning("notifier still sending after %gs at stop; leaving it", wait_s)
                return
            self._thread = None
            self._last_round(wait_s)
        if self._owns_store:
            self.store.close()

    def _last_round(self, wait_s: float) -> None:
        self.timeout_s = min(self.timeout_s, wait_s)
        self.attempt_cap_s = min(self.attempt_cap_s, wait_s)
        try:
            self.run_once(self.clock.now())
        except StoreError as exc:
            log.error("could not record the last deliveries; they stay pending: %s", exc)
        except Exception:  # stopping must finish; the alerts stay pending for the next start
            log.exception("last notifier round failed")

    def wake(self) -> None:
        """Look for due alerts now (the engine calls this after a tick that raised one)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once(self.clock.now())
            except StoreError as exc:
                log.error("could not record deliveries, will retry: %s", exc)
            except Exception:  # the notifier thread must outlive a bug in one round; it logs it
                log.exception("notifier round failed")
            self._wake.wait(self._sleep_for(self.clock.now()))

    def _sleep_for(self, now: datetime) -> float:
        """Until the next due alert, at most poll_s (the clock may be a fake one that jumps)."""
        try:
            nxt = self.store.next_alert_at()
        except StoreError as exc:
            log.error("could not read the next due alert, will retry: %s", exc)
            return self.poll_s
        if nxt is None:
            return self.poll_s
        due = parse_iso(nxt) if nxt else now
        assert due is not None
        return min(self.poll_s, max(0.05, (due - now).total_seconds()))

    # -- one round ---------------------------------------------------------------------

    def run_once(self, now: datetime) -> list[Attempt]:
        """Send what is due at `now`, record it, schedule what follows; what was attempted.
        Rounds never overlap (a test may call this while the thread runs)."""
        with self._round:
            self._refresh()
            self._targets_now = {}
            claim = Claim.take(self.store, self.clock, now, self.claim_s)
            try:
                pages = [self._plan(alert, now) for alert in claim.alerts]
                sends = Messages(self.store, self.policy, self._spec).for_pages(pages)
            except BaseException:
                claim.release()
                raise
            self._deliver(sends, claim)
            return record(self, pages, sends, now)

    def _refresh(self) -> None:
        version = self.store.defs_version()
        if version == self._defs_version:
            return
        self._defs_version = version
        self._specs.clear()
        routes = {name: route_from_json(text) for name, text in self.store.routes_json().items()}
        self.policy = Policy(
            defaults_from_json(self.store.defaults_json()), routes, self.policy.retry_base_s, self.policy.retry_max_s
        )

    def _spec(self, name: str) -> EventSpec | None:
        if name not in self._specs:
            found = self.store.event_specs([name]).get(name)
            self._specs[name] = None if found is None else spec_from_json(found[0])
        return self._specs[name]

    # -- planning ------------------------------------------------------------------------

    def _plan(self, alert: dict[str, Any], now: datetime) -> Page:
        """What this alert sends now, what it holds for quiet hours, what could not be resolved."""
        page = self.policy.start(alert, now)
        if page.is_due:
            self._plan_page(page, now)
        self._plan_held(page, now)
        return page

    def _plan_page(self, page: Page, now: datetime) -> None:
        names = [self.policy.route_name(page.alert)]
        if page.escalated_to is not None:
            names.append(page.escalated_to)
        skip = self.store.sent_targets(page.id, page.number) | set(page.held_keys())
        for name in names:
            targets = self._targets(name)
            if isinstance(targets, str):
                page.problems.append((name, targets))
                continue
            for target in targets:
                if target.key in skip:
                    continue
                until = self.policy.quiet_until(target.route, page.kind, now)
                if until is None:
                    page.targets.append(target)
                else:
                    page.held[target.key] = until

    def _plan_held(self, page: Page, now: datetime) -> None:
        for name, label in page.held_keys():
            targets = self._targets(name)
            target = next((t for t in targets if t.label == label), None) if isinstance(targets, list) else None
            if target is None:
                log.warning(
                    "alert:%d: held notice for %s in route %s dropped: the route no longer has it", page.id, label, name
                )
                continue
            until = self.policy.quiet_until(name, page.kind, now)
            if until is None:
                page.held_ready.append(target)
            else:
                page.held[target.key] = until

    def _targets(self, name: str | None) -> list[Target] | str:
        """The route's targets (built once a round), or why there are none."""
        if name not in self._targets_now:
            self._targets_now[name] = self._build(name)
        return self._targets_now[name]

    def _build(self, name: str | None) -> list[Target] | str:
        if name is None:
            return "no route: the event names none and [defaults] has no driver"
        route = self.policy.routes.get(name)
        if route is None:
            return f"no route '{name}' in the loaded definitions"
        try:
            targets = build_targets(route)
        except Exception as exc:
            return f"route '{name}' could not be built: {self._scrubber.scrub(str(exc))}"
        self._scrubber.add(s for t in targets for s in t.secrets)
        return targets or f"route '{name}' has no targets (tags {list(route.tags)} matched nothing)"

    # -- sending -----------------------------------------------------------------------------

    def _deliver(self, sends: Sequence[Send], claim: Claim) -> None:
        """Send everything, targets in parallel, each target's messages in order; bounded."""
        queues: dict[tuple[str, str], list[Send]] = {}
        for send in sorted(sends, key=lambda s: min(p.id for p in s.pages)):
            queues.setdefault(send.target.key, []).append(send)
        workers = []
        for queue in queues.values():
            results: list[tuple[bool, str | None]] = []
            worker = threading.Thread(
                target=self._send_all, args=(queue, results), daemon=True, name=f"evman-send-{queue[0].target.route}"
            )
            worker.start()
            workers.append((worker, queue, results))
        started = time.monotonic()
        for worker, queue, results in workers:
            claim.join(worker, started + self.attempt_cap_s * len(queue))
            done = list(results)
            for index, send in enumerate(queue):
                send.ok, send.error = (
                    done[index]
                    if index < len(done)
                    else (False, f"no answer within {format_duration(self.attempt_cap_s)}; gave up on this attempt")
                )

    def _send_all(self, queue: Sequence[Send], results: list[tuple[bool, str | None]]) -> None:
        for send in queue:
            ok, error = send_message(
                send.target, send.title, send.body, send.notify_type, self.timeout_s, throttle_s=self.throttle_s
            )
            results.append((ok, None if error is None else self._scrubber.scrub(error)[:ERROR_CHARS]))


# ---------------------------------------------------------------- wiring


def start_notifier(path: str | Path, engine: Any, **options: Any) -> Notifier:
    """Start a notifier on the database at `path` with the engine's clock, and have the engine
    wake it after any tick that raised an alert (chained onto engine.on_change as it is now)."""
    notifier = Notifier(path, getattr(engine, "clock", None), **options)
    fleet = getattr(engine, "fleet", None)
    if fleet is not None:  # the engine's limits: a stopped process never holds an alert row long
        notifier.store.limit_sessions(**fleet.session_limits)
    previous: Callable[[list[Any]], None] | None = getattr(engine, "on_change", None)

    def on_change(changes: list[Any]) -> None:
        if previous is not None:
            previous(changes)
        if any(getattr(change, "kind", None) == "alert" for change in changes):
            notifier.wake()

    if hasattr(engine, "on_change"):
        engine.on_change = on_change
    return notifier.start()


__all__ = ["Attempt", "Notifier", "masked", "start_notifier"]
