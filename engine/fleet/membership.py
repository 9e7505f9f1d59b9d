"""One engine of several on a PostgreSQL database: its membership (the `engines` row and its
lease), the run ids it hands out, its wake-ups, and what it does when it finds itself fenced.

The protocol is in HACKING.md ("PostgreSQL and several engines"); the statements are in
engine/store/fleet.py. Nothing here trusts memory or a clock for safety: the lease is renewed
in the same transaction as every write, and a refused write fences the engine."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from evman.engine.fleet.placement import Seat, waiting_reason
from evman.engine.model import EventSpec
from evman.engine.running.procs import pid_alive, signal_group
from evman.engine.store import Store
from evman.engine.store.fleet import LEASE_TICKS, Gone, OpenEngine, Token
from evman.engine.store.pg_store import PgStore

log = logging.getLogger("evman.fleet")

FENCED_EXIT: Final = 3
"""The exit status of `evman --no-ui` when its engine was fenced."""
MIN_LEASE_S: Final = 1.0
ID_BLOCK: Final = 64
STATEMENT_LIMIT_S: Final = 30.0
"""No statement of an engine runs longer than this (or 10 leases, if more): none should come near."""


@dataclass
class Membership:
    """This engine's place among the engines of one database."""

    store: PgStore
    seat: Seat
    pid: int
    tick_s: float
    version: str
    token: Token | None = None
    fenced: str | None = None
    """Why the engine was fenced, once it was."""
    starts_fleet: bool = False
    """No other engine was live when this one joined: the fleet starts (@reboot events are queued)."""
    doubtful: dict[int, str] = field(default_factory=dict)
    """The engines live when this one joined whose lease had run out (engine id -> its lease's
    end then), when no other was live: after a database outage they renew, after a power cut
    of the whole fleet they never will. Which of the two it was is known once each renewed
    (the fleet was live: no fleet start) or was taken over without renewing."""
    reboot_due: bool = False
    """The doubt settled as a fleet start: the engine queues the @reboot events at its next tick."""
    unfit: list[str] = field(default_factory=list)
    """The events whose hosts/tags this engine does not fit (read when the definitions change)."""
    live: list[Seat] = field(default_factory=list)
    """What the live engines offer, this one included (read at each tick's takeover look)."""
    _ids: list[int] = field(default_factory=list)
    _listener: Any = None

    @property
    def lease_s(self) -> float:
        return max(MIN_LEASE_S, LEASE_TICKS * self.tick_s)

    @property
    def session_limits(self) -> dict[str, int]:
        """What the server enforces on each session of this engine's process (ms). A process that
        stops (SIGSTOP, a frozen VM) inside a transaction loses it after one lease, so the rows it
        had claimed or written are free for the survivors; no engine waits behind a row lock for
        more than half a lease (its tick fails and is tried again, it never hangs)."""
        lease_ms = int(self.lease_s * 1000)
        return {
            "idle_in_transaction_session_timeout": lease_ms,
            "lock_timeout": lease_ms // 2,
            "statement_timeout": int(max(STATEMENT_LIMIT_S, 10 * self.lease_s) * 1000),
        }

    def join(self) -> Token:
        """Insert this engine's row; `starts_fleet` tells whether any other engine was live then
        (joins are serialised, so of engines starting together exactly one starts the fleet;
        an engine on this host whose pid is gone does not count)."""
        self.store.limit_sessions(**self.session_limits)
        tags = ",".join(sorted(self.seat.tags)) or None
        self.token, others = self.store.register_engine(
            host=self.seat.host, pid=self.pid, tags=tags, lease_s=self.lease_s, tick_s=self.tick_s, version=self.version
        )
        others = [e for e in others if e.host != self.seat.host or pid_alive(e.pid)]
        renewing = [e for e in others if not e.expired]
        self.doubtful = {} if renewing else {e.id: e.lease_until for e in others}
        self.starts_fleet = not others
        self.live = [self.seat, *(Seat(e.host, e.tags) for e in renewing)]
        log.info(
            "joined as engine %s (epoch %s, lease %g s%s)",
            self.token.engine_id,
            self.token.epoch,
            self.lease_s,
            ", the first live engine" if self.starts_fleet else self._doubt_said(),
        )
        return self.token

    def _doubt_said(self) -> str:
        if not self.doubtful:
            return ""
        return (
            f"; the leases of engine(s) {', '.join(map(str, sorted(self.doubtful)))} had run out: "
            "if they renew (a database outage) the fleet was live, if not it starts now"
        )

    def next_id(self) -> int:
        """A run id from the database's sequence, fetched in blocks: never one another engine has."""
        if not self._ids:
            self._ids = self.store.next_run_ids(ID_BLOCK)
        return self._ids.pop(0)

    # -- placement ---------------------------------------------------------------------

    def place(self, placed: dict[str, tuple[list[str], list[str]]]) -> None:
        """The events that say where they run (name -> (hosts, tags)): remember those this
        engine does not fit; it claims no unowned run of theirs and starts none."""
        self.unfit = sorted(name for name, (hosts, tags) in placed.items() if not self.seat.fits_placement(hosts, tags))

    def fits(self, spec: EventSpec) -> bool:
        return self.seat.fits(spec)

    def why_waiting(self, spec: EventSpec) -> str:
        return waiting_reason(spec, self.live)

    # -- takeover ----------------------------------------------------------------------

    def take_over(self, now: str) -> tuple[list[Gone], list[dict[str, Any]]]:
        """Engines whose lease ran out (or that stopped), with their active runs, and the
        unowned runs this engine fits or must judge (late, window closed) at `now`: now ours."""
        assert self.token is not None
        gone, runs = self.store.take_over(
            self.token, self.seat.host, pid_alive, self.unfit, now, self._saw, expired_too=self._settled()
        )
        for engine in gone:
            how = "had stopped" if engine.was == "stopped" else "was gone or stopped renewing its lease"
            log.warning(
                "took over engine %s (pid %s on %s, epoch %s), which %s",
                engine.id,
                engine.pid,
                engine.host,
                engine.epoch,
                how,
            )
        if runs:
            log.warning(
                "%d run(s) are this engine's now: %s",
                len(runs),
                ", ".join(f"run:{r['id']} ({r['state']})" for r in runs[:20]),
            )
        return gone, runs

    def _settled(self) -> bool:
        """Whether this engine has reached the database for a whole lease: only then may an
        engine whose lease ran out be taken over. After a database outage every lease has run
        out, and every engine reconnects within a tick or two: none takes another over, the
        fleet goes on. A partition of one engine is a lease for the others, as always."""
        return time.monotonic() - float(getattr(self.store, "connected_at", 0.0)) >= self.lease_s

    def _saw(self, others: Iterable[OpenEngine]) -> None:
        others = list(others)
        self.live = [self.seat, *(Seat(e.host, e.tags) for e in others if e.state == "live" and not e.expired)]
        if self.doubtful:
            self._settle_doubt({e.id: e for e in others if e.state == "live"})

    def _settle_doubt(self, live: dict[int, OpenEngine]) -> None:
        """A doubtful engine renewed: the fleet was live. Every one taken over (or stopped)
        without renewing: this engine starts the fleet (reboot_due)."""
        if any(i in live and live[i].lease_until > until for i, until in self.doubtful.items()):
            log.info("engine(s) live before this one joined renewed their lease: no fleet start")
            self.doubtful = {}
            return
        self.doubtful = {i: until for i, until in self.doubtful.items() if i in live}
        if not self.doubtful:
            log.info("no engine live before this one joined renewed its lease: the fleet starts now")
            self.starts_fleet = self.reboot_due = True

    def leave(self) -> None:
        """A graceful stop: the lease ends now; listening engines take over within a tick."""
        if self.token is not None and self.fenced is None:
            self.store.release_lease(self.token)

    def listen(self, wake: Callable[[], None]) -> None:
        """Wake on NOTIFY evman (requests queued, an engine stopped), unless the URL says listen=false."""
        if not getattr(self.store, "listen", False):
            return
        from evman.engine.store.listen import Listener

        self._listener = Listener(str(self.store.target), lambda _payload: wake()).start()

    def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def fence(self, why: str, children: Collection[tuple[int, int | None]]) -> None:
        """Fenced: start nothing more, kill the commands this engine started (unless another
        engine on this host adopted them), say why. The caller stops the loop; exit status 3."""
        self.fenced = why
        log.error(
            "FENCED: %s. This engine stops starting work, kills the commands it started, "
            "and exits with status %d; another engine owns its runs now.",
            why,
            FENCED_EXIT,
        )
        adopted = self._adopted_elsewhere([run_id for run_id, _ in children])
        for run_id, pid in children:
            if pid is not None and run_id not in adopted and pid_alive(pid):
                log.error("killing run %s (process group %s): this engine no longer owns it", run_id, pid)
                signal_group(pid, signal.SIGKILL)
        if self.token is not None:
            try:
                self.store.mark_fenced(self.token, why)
            except Exception as exc:
                log.error("could not mark engine %s fenced: %s", self.token.engine_id, exc)

    def _adopted_elsewhere(self, run_ids: list[int]) -> set[int]:
        if not run_ids or self.token is None:
            return set()
        try:
            return self.store.adopted_elsewhere(run_ids, self.token)
        except Exception:
            return set()


def membership_for(store: Store, seat: Seat, pid: int, tick_s: float, version: str) -> Membership | None:
    """This engine's membership on PostgreSQL; None on SQLite, one engine that runs every event
    (--tags are ignored there, and the engine's log says so)."""
    if isinstance(store, PgStore):
        return Membership(store, seat, pid, tick_s, version)
    if seat.tags:
        logging.getLogger("evman.engine").warning(
            "--tags %s is ignored: %s is SQLite, one engine that runs every event "
            "(tags choose among several engines on PostgreSQL)",
            ",".join(sorted(seat.tags)),
            store.url,
        )
    return None
