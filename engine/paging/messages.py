"""What a round of paging sends: a message per (page, target), each with its notice (full for
email, short for chat), and the notices quiet hours held as one digest per target."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from evman.engine.clock import parse_iso
from evman.engine.model import EventSpec, Route
from evman.engine.paging.notices import Notice, PageContext, compose, compose_digest
from evman.engine.paging.rounds import Send
from evman.engine.paging.rules import Page, Policy, Target
from evman.engine.store import Store


class Messages:
    """The sends of one round, from its planned pages."""

    def __init__(self, store: Store, policy: Policy, spec: Callable[[str], EventSpec | None]) -> None:
        self.store = store
        self.policy = policy
        self.spec = spec

    def _notice(self, page: Page, *, held: bool = False) -> Notice:
        alert = page.alert
        run = self.store.run(int(alert["run_id"])) if alert["run_id"] is not None else None
        escalated_to = page.escalated_to or (page.route.escalate_to if page.route and alert["escalated_at"] else None)
        context = PageContext(
            zone=self.policy.defaults.timezone,
            ack_command=ack_command(self.store, page.id),
            page=1 if held else page.number,
            escalated_to=escalated_to,
            escalate_after_s=page.route.escalate_after_s if page.route else None,
            held_since=parse_iso(alert["held_since"]) if held else None,
            quiet=_quiet_text(page.route) if held else None,
        )
        return compose(alert, run, self.spec(str(alert["event"])), context)

    def for_pages(self, pages: Sequence[Page]) -> list[Send]:
        """One send per (page, target); notices held for quiet hours go as one digest per target."""
        sends: list[Send] = []
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

    def _single(self, target: Target, page: Page, notice: Notice, *, held: bool = False) -> Send:
        return Send(
            target,
            notice.title,
            notice.full if target.is_email else notice.short,
            notice.notify_type,
            [page],
            held=held,
        )

    def _digest(self, group: list[tuple[Target, Page]]) -> Send:
        target = group[0][0]
        items = [(page.alert, self._notice(page, held=True)) for _, page in group]
        notice = compose_digest(
            items, route=target.route, quiet=_quiet_text(group[0][1].route), zone=self.policy.defaults.timezone
        )
        return Send(
            target,
            notice.title,
            notice.full if target.is_email else notice.short,
            notice.notify_type,
            [page for _, page in group],
            held=True,
            digest=True,
        )


def ack_command(store: Store, alert_id: int) -> str:
    """The exact command that acknowledges the alert, with --db unless it is the default."""
    command = f"evman ack alert:{alert_id}"
    path = store.path
    default = Path(os.environ.get("EVMAN_DB") or "evman.db")
    if path is not None and path.absolute() != default.absolute():
        command += f" --db {path}"
    elif path is None and store.several_engines:
        command += f" --db {shlex.quote(store.url)}"
    return command


def _quiet_text(route: Route | None) -> str | None:
    if route is None or route.quiet_from is None:
        return None
    return f"{route.quiet_from}-{route.quiet_to}"
