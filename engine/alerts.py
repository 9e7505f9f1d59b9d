"""Paging the driver: the notifier thread that delivers alert rows through Apprise.

The engine writes alert rows; the notifier, in its own thread with its own Store, sends the
due ones (pending = 1 and next_attempt_at due), records every attempt in `deliveries`,
retries failures with backoff, pages unacknowledged alerts again and escalates them, and
sends what quiet hours held as one digest. The rules for all of that are engine/paging.py;
this module reads, sends and writes. It is the only module that imports apprise.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from engine.clock import Clock, SystemClock, iso, parse_iso
from engine.definitions import MASK, mask_url, spec_from_json
from engine.durations import format_duration
from engine.model import EventSpec, Route
from engine.notices import Notice, PageContext, compose, compose_digest
from engine.paging import Page, Policy, Target, defaults_from_json, route_from_json
from engine.store import Store, StoreError

log = logging.getLogger("evman.alerts")

EMAIL_SCHEMES: Final = frozenset({"mailto", "mailtos"})
ERROR_CHARS: Final = 300


def masked(url: str) -> str:
    """`url` as it may be shown or logged: credentials and tokens replaced by ****."""
    return mask_url(url)


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
class _Send:
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


class Notifier:
    """Delivers alerts in its own thread. Tests call run_once(now) with a FakeClock instead."""

    def __init__(self, db: str | Path | Store, clock: Clock | None = None, *, poll_s: float = 1.0,
                 retry_base_s: float = 30.0, retry_max_s: float = 1800.0, max_failures: int = 5,
                 timeout_s: float = 10.0, attempt_cap_s: float = 30.0,
                 throttle_s: float | None = None) -> None:
        """`timeout_s` bounds each connection and read of a target; `attempt_cap_s` one whole
        message to one target, whatever the plugin does. After `max_failures` rounds in a row
        with a failed attempt a `delivery` alert goes to [defaults].driver; retrying goes on.
        `throttle_s`: least seconds between two messages to one target in a round; None keeps
        Apprise's per-service rate (5.5 s for most, e.g. email; none for json://)."""
        self._owns_store = not isinstance(db, Store)
        self.store = db if isinstance(db, Store) else Store(db, create=False)
        self.clock = clock or SystemClock()
        self.poll_s = poll_s
        self.max_failures = max_failures
        self.timeout_s = timeout_s
        self.attempt_cap_s = attempt_cap_s
        self.throttle_s = throttle_s
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
            pages = [self._plan(alert, now) for alert in self.store.due_alerts(now)]
            sends = self._messages(pages)
            self._deliver(sends)
            return self._record(pages, sends, now)

    def _refresh(self) -> None:
        version = self.store.defs_version()
        if version == self._defs_version:
            return
        self._defs_version = version
        self._specs.clear()
        routes = {name: route_from_json(text) for name, text in self.store.routes_json().items()}
        self.policy = Policy(defaults_from_json(self.store.defaults_json()), routes,
                             self.policy.retry_base_s, self.policy.retry_max_s)

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
                log.warning("alert:%d: held notice for %s in route %s dropped: the route no longer has it",
                            page.id, label, name)
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
        except Exception as exc:  # noqa: BLE001 -- a bad config file is a failed attempt, said in words
            return f"route '{name}' could not be built: {self._scrubber.scrub(str(exc))}"
        self._scrubber.add(s for t in targets for s in t.secrets)
        return targets or f"route '{name}' has no targets (tags {list(route.tags)} matched nothing)"

    # -- composing messages ----------------------------------------------------------------

    def _notice(self, page: Page, *, held: bool = False) -> Notice:
        alert = page.alert
        run = self.store.run(int(alert["run_id"])) if alert["run_id"] is not None else None
        escalated_to = page.escalated_to or (page.route.escalate_to if page.route and alert["escalated_at"]
                                             else None)
        context = PageContext(
            zone=self.policy.defaults.timezone, ack_command=self.ack_command(page.id),
            page=1 if held else page.number, escalated_to=escalated_to,
            escalate_after_s=page.route.escalate_after_s if page.route else None,
            held_since=parse_iso(alert["held_since"]) if held else None,
            quiet=_quiet_text(page.route) if held else None)
        return compose(alert, run, self._spec(str(alert["event"])), context)

    def _messages(self, pages: Sequence[Page]) -> list[_Send]:
        """One send per (page, target); notices held for quiet hours go as one digest per target."""
        sends: list[_Send] = []
        held: dict[tuple[str, str], list[tuple[Target, Page]]] = {}
        for page in pages:
            if page.targets:
                notice = self._notice(page)
                sends += [self._single(target, page, notice) for target in page.targets]
            for target in page.held_ready:
                held.setdefault(target.key, []).append((target, page))
        for group in held.values():
            if len(group) == 1:
                target, page = group[0]
                sends.append(self._single(target, page, self._notice(page, held=True), held=True))
            else:
                sends.append(self._digest(group))
        return sends

    def _single(self, target: Target, page: Page, notice: Notice, *, held: bool = False) -> _Send:
        return _Send(target, notice.title, notice.full if target.is_email else notice.short,
                     notice.notify_type, [page], held=held)

    def _digest(self, group: list[tuple[Target, Page]]) -> _Send:
        target = group[0][0]
        items = [(page.alert, self._notice(page, held=True)) for _, page in group]
        notice = compose_digest(items, route=target.route, quiet=_quiet_text(group[0][1].route),
                                zone=self.policy.defaults.timezone)
        return _Send(target, notice.title, notice.full if target.is_email else notice.short,
                     notice.notify_type, [page for _, page in group], held=True, digest=True)

    def ack_command(self, alert_id: int) -> str:
        """The exact command that acknowledges the alert, with --db unless it is the default."""
        command = f"evman ack alert:{alert_id}"
        path = self.store.path
        default = Path(os.environ.get("EVMAN_DB") or "evman.db")
        if path is not None and path.absolute() != default.absolute():
            command += f" --db {path}"
        return command

    # -- sending -----------------------------------------------------------------------------

    def _deliver(self, sends: Sequence[_Send]) -> None:
        """Send everything, targets in parallel, each target's messages in order; bounded."""
        queues: dict[tuple[str, str], list[_Send]] = {}
        for send in sorted(sends, key=lambda s: min(p.id for p in s.pages)):
            queues.setdefault(send.target.key, []).append(send)
        workers = []
        for queue in queues.values():
            results: list[tuple[bool, str | None]] = []
            worker = threading.Thread(target=self._send_all, args=(queue, results), daemon=True,
                                      name=f"evman-send-{queue[0].target.route}")
            worker.start()
            workers.append((worker, queue, results))
        started = time.monotonic()
        for worker, queue, results in workers:
            worker.join(max(0.0, started + self.attempt_cap_s * len(queue) - time.monotonic()))
            done = list(results)
            for index, send in enumerate(queue):
                send.ok, send.error = done[index] if index < len(done) else (
                    False, f"no answer within {format_duration(self.attempt_cap_s)}; gave up on this attempt")

    def _send_all(self, queue: Sequence[_Send], results: list[tuple[bool, str | None]]) -> None:
        for send in queue:
            ok, error = send_message(send.target, send.title, send.body, send.notify_type, self.timeout_s,
                                     throttle_s=self.throttle_s)
            results.append((ok, None if error is None else self._scrubber.scrub(error)[:ERROR_CHARS]))

    # -- recording -----------------------------------------------------------------------------

    def _record(self, pages: Sequence[Page], sends: Sequence[_Send], now: datetime) -> list[Attempt]:
        attempts = [self._sent(send, now) for send in sends]
        for page in pages:
            attempts += self._unsent(page, now)
        self.store.record_attempts([(page.id, page.rows, self.policy.changes_after(page, now))
                                    for page in pages])
        for page in pages:
            self._follow_up(page, now)
        return attempts

    def _sent(self, send: _Send, now: datetime) -> Attempt:
        outcome = "sent" if send.ok else "failed"
        for page in send.pages:
            number = int(page.alert["pages"]) if send.held else page.number
            page.rows.append({"attempted_at": iso(now), "route": send.target.route, "target": send.target.label,
                              "outcome": outcome, "error": send.error, "page": max(1, number),
                              "held": send.held})
        ids = ", ".join(f"alert:{p.id}" for p in send.pages)
        what = "digest" if send.digest else send.title
        if send.ok:
            log.info("%s %s sent to route %s at %s", ids, what, send.target.route, send.target.label)
        else:
            log.warning("%s %s not delivered to route %s at %s: %s", ids, what, send.target.route,
                        send.target.label, send.error)
        return Attempt(tuple(p.id for p in send.pages), send.target.route, send.target.label, outcome,
                       send.error, now, send.title, send.digest)

    def _unsent(self, page: Page, now: datetime) -> list[Attempt]:
        """Routes that could not be resolved (failed attempts) and notices newly held."""
        attempts = []
        for route, problem in page.problems:
            page.rows.append({"attempted_at": iso(now), "route": route, "target": None, "outcome": "failed",
                              "error": problem, "page": page.number, "held": False})
            attempts.append(Attempt((page.id,), route, None, "failed", problem, now, _title(page)))
            log.warning("alert:%d %s of %s: %s", page.id, page.kind, page.alert["event"], problem)
        old = set(page.held_keys())
        for (route, label), until in page.held.items():
            if (route, label) not in old:
                attempts.append(Attempt((page.id,), route, label, "held", f"quiet hours until {iso(until)}",
                                        now, _title(page)))
                log.info("alert:%d %s held for route %s until %s (quiet hours)", page.id, _title(page),
                         route, iso(until))
        return attempts

    def _follow_up(self, page: Page, now: datetime) -> None:
        """Rounds that keep failing raise a `delivery` alert; once one gets through, it resolves."""
        alert = page.alert
        if alert["kind"] == "delivery":
            return
        failed = [row for row in page.rows if row["outcome"] == "failed"]
        failures = int(alert["failures"]) + 1
        if failed and failures == self.max_failures:
            last = failed[-1]
            where = f"route '{last['route']}'" if last["route"] else "its route"
            message = (f"alert:{page.id} ({alert['kind']} of {alert['event']}) could not be delivered to "
                       f"{where} after {failures} attempts: {last['error']}. evman keeps retrying it.")
            self.store.raise_delivery_alert(str(alert["event"]), alert["run_id"],
                                            self.policy.defaults.driver, message, now)
            log.error("%s", message)
        elif not failed and any(row["outcome"] == "sent" for row in page.rows) \
                and int(alert["failures"]) >= self.max_failures:
            self.store.resolve_alerts(str(alert["event"]), "delivery", now)


def _title(page: Page) -> str:
    return f"[evman] {page.kind}: {page.alert['event']}"


def _quiet_text(route: Route | None) -> str | None:
    if route is None or route.quiet_from is None:
        return None
    return f"{route.quiet_from}-{route.quiet_to}"


# ---------------------------------------------------------------- routes and Apprise

def build_targets(route: Route) -> list[Target]:
    """Fresh Apprise services for the route: one per URL, plus the config file's entries
    (only those with one of the route's tags, when it names tags)."""
    import apprise

    targets = []
    for url in route.urls:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ValueError(f"Apprise cannot use {masked(url)}")
        targets.append(_target(route.name, masked(url), plugin))
    if route.config is not None:
        config = apprise.AppriseConfig()
        config.add(route.config)
        bundle = apprise.Apprise()
        bundle.add(config)
        found: Iterable[Any] = bundle.find(tag=list(route.tags) if route.tags else apprise.common.MATCH_ALL_TAG)
        for plugin in found:
            targets.append(_target(route.name, str(plugin.url(privacy=True)).partition("?")[0], plugin))
    return _unique_labels(targets)


def _target(route: str, label: str, plugin: Any) -> Target:
    scheme = label.partition("://")[0].lower()
    return Target(route, label, plugin, scheme in EMAIL_SCHEMES, secrets_of(plugin))


def _unique_labels(targets: list[Target]) -> list[Target]:
    seen: dict[str, int] = {}
    for target in targets:
        seen[target.label] = seen.get(target.label, 0) + 1
        if seen[target.label] > 1:
            target.label = f"{target.label} #{seen[target.label]}"
    return targets


_TOKEN: Final = re.compile(r"[^/:@?&=#,;]+")


def secrets_of(plugin: Any) -> tuple[str, ...]:
    """The parts of the plugin's URL that its privacy form hides (passwords, tokens, keys)."""
    full, private = str(plugin.url()), str(plugin.url(privacy=True))
    shown = {unquote(t) for t in _TOKEN.findall(private)}
    hidden = {unquote(t) for t in _TOKEN.findall(full)} - shown
    password = getattr(plugin, "password", None)
    if password:
        hidden.add(str(password))
    return tuple(sorted((s for s in hidden if len(s) >= 3 and s != MASK), key=len, reverse=True))


def send_message(target: Target, title: str, body: str, notify_type: str, timeout_s: float, *,
                 throttle_s: float | None = None) -> tuple[bool, str | None]:
    """Send one message to one target: (delivered, why not). Never raises."""
    import apprise

    plugin = target.plugin
    for attribute in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(plugin, attribute):
            setattr(plugin, attribute, timeout_s)
    if throttle_s is not None:
        plugin.request_rate_per_sec = throttle_s
    bundle = apprise.Apprise()
    bundle.add(plugin)
    try:
        result = bundle.notify(body=body, title=title, notify_type=apprise.NotifyType(notify_type),
                               body_format=apprise.NotifyFormat.TEXT)
    except Exception as exc:  # noqa: BLE001 -- a plugin bug is a failed attempt, recorded with its text
        return False, f"{type(exc).__name__}: {exc}"
    if result:
        return True, None
    return False, _errors_of(result) or "Apprise reported a failure (details in the log)"


def _errors_of(result: Any) -> str:
    """Warnings Apprise captured for this call (Apprise 2 results carry them; older bools don't)."""
    logs = getattr(result, "logs", None)
    if not callable(logs):
        return ""
    messages = [str(entry.message) for entry in logs() if getattr(entry, "level", "") in
                ("WARNING", "ERROR", "CRITICAL")]
    return "; ".join(dict.fromkeys(messages))


class SecretScrubber(logging.Filter):
    """Replaces known secrets with **** in text and in log records of the logger it is
    installed on. Secrets are every hidden part of every target this process has built."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(secrets)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True

    def install(self, logger: str = "apprise") -> SecretScrubber:
        """Filter `logger`'s records (once; a logger keeps one copy of a filter)."""
        logging.getLogger(logger).addFilter(self)
        return self


SCRUBBER: Final = SecretScrubber()
"""One per process: Apprise logs through one logger, whichever notifier sends."""


# ---------------------------------------------------------------- wiring

def start_notifier(path: str | Path, engine: Any, **options: Any) -> Notifier:
    """Start a notifier on the database at `path` with the engine's clock, and have the engine
    wake it after any tick that raised an alert (chained onto engine.on_change as it is now)."""
    notifier = Notifier(path, getattr(engine, "clock", None), **options)
    previous: Callable[[list[Any]], None] | None = getattr(engine, "on_change", None)

    def on_change(changes: list[Any]) -> None:
        if previous is not None:
            previous(changes)
        if any(getattr(change, "kind", None) == "alert" for change in changes):
            notifier.wake()

    if hasattr(engine, "on_change"):
        engine.on_change = on_change
    return notifier.start()


