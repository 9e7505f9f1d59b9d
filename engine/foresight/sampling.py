"""The projection by sampling: SAMPLES possible nights at once, as one array per event of
finish times, propagated through the graph level by level with the maximum at joins.

Every event is a row: a finished one its end, a held one (or one failed with no retries)
+inf, an event without an occurrence -inf (it holds nobody up). A running one ends at now
plus its remaining time conditioned on how long it has run; a waiting one starts at the
latest of now, its opening and what it waits for, and takes its run time. The rows of a
level are computed together (numpy), so a recompute costs a few array operations per level
of the graph plus work proportional to events x samples, not a Python loop per event.

`Projector` keeps the rows between recomputes: `set()` changes one event's occurrence (its
model is rebuilt only when its history, factor or seed changed), `project(now)` propagates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from evman.engine.foresight.graph import Graph
from evman.engine.foresight.model import K50, K90, SAMPLES, TAIL_MIN, Array, Model, tail_left
from evman.engine.foresight.occurrence import Occurrence
from evman.engine.foresight.waits import Claim, PoolFacts, Uses
from evman.engine.model import RunState

ABSENT: Final = 0
DONE: Final = 1
RUNNING: Final = 2
WAITING: Final = 3
NEVER: Final = 4
"""Row kinds: no occurrence, finished, running, waiting (or failed with a retry to come), unbounded."""
Rows = npt.NDArray[np.intp]
_HALF_STEP: Final = (2 * SAMPLES).bit_length() - 1
assert 1 << _HALF_STEP == 2 * SAMPLES
Array32 = npt.NDArray[np.float32]


class Level:
    """The events of one level of the graph and, for each, where its upstreams' rows are:
    `slots[k]` holds every event's k-th upstream (its first again when it has fewer), so
    the latest upstream finish is an elementwise maximum over the slots (numpy's
    maximum.reduceat along rows is fifteen times slower)."""

    __slots__ = ("rows", "slots")

    def __init__(self, rows: Sequence[int], parents: Sequence[Sequence[int]]) -> None:
        self.rows: Rows = np.asarray(rows, dtype=np.intp)
        width = max((len(ps) for ps in parents), default=0)
        self.slots: list[Rows] = [
            np.asarray([ps[k] if k < len(ps) else ps[0] for ps in parents], dtype=np.intp) for k in range(width)
        ]


def levels_of(graph: Graph, index: Mapping[str, int]) -> list[Level]:
    """Level 0: events that wait for nothing; level k: one more than the highest level of what it waits for."""
    level: dict[str, int] = {}
    groups: dict[int, list[str]] = {}
    for name in graph.order:
        ups = graph.waits_for.get(name, ())
        level[name] = 1 + max((level[u] for u in ups), default=-1)
        groups.setdefault(level[name], []).append(name)
    return [
        Level([index[n] for n in groups[k]], [[index[u] for u in graph.waits_for.get(n, ())] for n in groups[k]])
        for k in sorted(groups)
    ]


def kind_of(occ: Occurrence) -> int:
    state = occ.state
    if state is RunState.SUCCEEDED:
        return DONE
    if state is RunState.RUNNING:
        return RUNNING
    if occ.held:
        return NEVER
    if state is RunState.WAITING or occ.retries_left > 0:
        return WAITING
    return NEVER


class Projector:
    """The rows of every event of `graph`, kept between recomputes. Finish times are float32
    seconds after the last projection's `now` (a millisecond at half a day's distance),
    which halves the memory each recompute walks."""

    def __init__(self, graph: Graph, tick_s: float = 1.0) -> None:
        self.graph, self.tick_s = graph, tick_s
        self.names: tuple[str, ...] = graph.order
        self.index = {name: i for i, name in enumerate(self.names)}
        self.levels = levels_of(graph, self.index)
        n = len(self.names)
        self.kind = np.zeros(n, dtype=np.int8)
        self.opens = np.full(n, -np.inf)
        """No start before this (epoch s): when it falls due, its window opens or its backoff ends."""
        self.delay = np.zeros(n)
        self.started = np.zeros(n)
        self.ended = np.zeros(n)
        self.deadline = np.full(n, np.nan)
        self.draw = np.zeros((n, SAMPLES), dtype=np.float32)
        self.sorted = np.zeros((n, SAMPLES), dtype=np.float32)
        self.rank = np.zeros((n, SAMPLES), dtype=np.int32)
        self.alpha = np.full(n, 50.0)
        self.tail_from = np.zeros(n)
        self.finish = np.full((n, SAMPLES), -np.inf, dtype=np.float32)
        """Each sample's finish, seconds after `now_ts`."""
        self.now_ts = 0.0
        self.occurrences: list[Occurrence | None] = [None] * n
        self._keys: list[object] = [None] * n
        self._by_kind: dict[int, Rows] = {}
        self._waiting_levels: list[tuple[Rows, list[Rows]]] = []
        """Per level with waiting events: their rows and their upstreams' rows by slot."""
        self._present: list[str] | None = None
        self.pools: PoolFacts | None = None
        """The pools' holders and line (engine/foresight/waits.py); None: no pool counts."""
        self.gates: dict[int, Array32] = {}
        """Row -> the earliest start its pools allow, per sample (seconds after now), from the last projection."""

    # -- the facts ----------------------------------------------------------------------------------

    def load(self, occurrences: Mapping[str, Occurrence]) -> Projector:
        """Every event's occurrence at once (events of the graph not in `occurrences` have none)."""
        for name in self.names:
            self.set(name, occurrences.get(name))
        return self

    def set(self, name: str, occ: Occurrence | None) -> None:
        """Change one event's occurrence (None: it has none)."""
        i = self.index[name]
        self.occurrences[i] = occ
        self._by_kind = {}
        kind = ABSENT if occ is None else kind_of(occ)
        self.kind[i] = kind
        if occ is None:
            self.deadline[i] = np.nan
            self.finish[i] = -np.inf
            return
        self.deadline[i] = np.nan if occ.deadline_ts is None else occ.deadline_ts
        self.delay[i] = occ.delay_s
        self._model(i, occ)
        if kind == DONE:
            self.ended[i] = occ.ended_ts if occ.ended_ts is not None else occ.started_ts or 0.0
        elif kind == NEVER:
            self.finish[i] = np.inf
        elif kind == RUNNING:
            self.started[i] = np.nan if occ.started_ts is None else occ.started_ts
        else:
            opens = -np.inf if occ.opens_ts is None else occ.opens_ts
            wait = occ.backoff_s if occ.state is not RunState.WAITING else 0.0
            self.opens[i], self.delay[i] = opens, occ.delay_s + wait

    def _model(self, i: int, occ: Occurrence) -> None:
        key = (occ.estimate, occ.factor, occ.seed)
        old = self._keys[i]
        if old is None or (old is not key and old != key):
            model = Model(self.names[i], occ.estimate, occ.factor, occ.seed)
            self._keys[i] = key
            self.draw[i], self.sorted[i], self.rank[i] = model.draw, model.sorted, model.rank
            self.alpha[i], self.tail_from[i] = model.alpha, model.tail_from

    @property
    def present(self) -> list[str]:
        """The events with an occurrence, in the graph's order (made when first asked for)."""
        if self._present is None or not self._by_kind:
            self.rows(DONE)
            self._present = [n for n, o in zip(self.names, self.occurrences, strict=True) if o is not None]
        return self._present

    def rows(self, kind: int) -> Rows:
        """The rows of one kind (ABSENT, DONE, ...)."""
        if not self._by_kind:
            self._by_kind = {k: np.flatnonzero(self.kind == k) for k in (DONE, RUNNING, WAITING)}
            waiting = self.kind == WAITING
            self._waiting_levels = []
            for level in self.levels:
                mask = waiting[level.rows]
                if mask.any():
                    self._waiting_levels.append((level.rows[mask], [slot[mask] for slot in level.slots]))
            self._present = None
        return self._by_kind.get(kind, np.zeros(0, dtype=np.intp))

    # -- propagation ----------------------------------------------------------------------------------

    def project(self, now_ts: float) -> Array32:
        """Every row's finish times at `now_ts`, in seconds after it (the array is the
        projector's own: it changes at the next call)."""
        self.now_ts = now_ts
        done = self.rows(DONE)
        finish = self.finish
        finish[done] = (self.ended[done] - now_ts).astype(np.float32)[:, None]
        self._run_rows(now_ts)
        floor = (np.maximum(self.opens - now_ts, 0.0) + self.delay).astype(np.float32)
        draw = self.draw
        gates = self.gates = self._pool_gates(now_ts, floor) if self.pools is not None else {}
        gated = np.fromiter(gates, dtype=np.intp, count=len(gates))
        for rows, slots in self._waiting_levels:
            start = np.broadcast_to(floor[rows, None], (len(rows), SAMPLES))
            if slots:
                ups = np.take(finish, slots[0], axis=0)
                for slot in slots[1:]:
                    np.maximum(ups, np.take(finish, slot, axis=0), out=ups)
                start = np.maximum(ups, start, out=ups)
            if len(gated):
                start = _gated(start, rows, gated, gates)
            finish[rows] = start + np.take(draw, rows, axis=0)
        return finish

    def _pool_gates(self, now_ts: float, floor: Array32) -> dict[int, Array32]:
        """The earliest start the pools allow each waiting row that uses one (seconds after
        now, per sample). The slots of a pool are tracked per sample as the times they free:
        the holders' finishes, now for a free slot. The line takes them in its order: each run
        starts once its n earliest slots are free (and not before a run ahead of it in a pool
        it shares: runs keep their place), then holds them until it finishes. Waiting rows of
        events with `uses` that are not in the line count only today's holders."""
        pools = self.pools
        assert pools is not None
        free = {name: self._held_slots(name, size, pools.holders, now_ts) for name, size in pools.sizes.items()}
        holders_only = {name: slots.copy() for name, slots in free.items()}
        gates: dict[int, Array32] = {}
        placed: dict[str, Array32] = {}
        """Pool -> the latest start, per sample, of the runs in its line so far."""
        finish = self.finish
        for claim in pools.line:
            i = self.index.get(claim.event, -1) if claim.projected else -1
            if i >= 0 and self.kind[i] != WAITING:
                continue
            gate = _slot_gate(claim.uses, free)
            for name, _ in claim.uses:
                if name in placed:
                    np.maximum(gate, placed[name], out=gate)
            start = gate.copy()
            if i >= 0:
                gates[i] = gate
                np.maximum(start, floor[i], out=start)
                ups = [
                    self.index[u]
                    for u in self.graph.waits_for.get(claim.event, ())
                    if self.kind[self.index[u]] != WAITING
                ]
                if ups:
                    np.maximum(start, finish[ups].max(axis=0), out=start)
                ends = start + self.draw[i]
            else:
                ends = start + np.float32(claim.p50_s)
            for name, count in claim.uses:
                placed[name] = np.maximum(placed[name], start) if name in placed else start
                slots = free.get(name)
                if slots is not None and count <= len(slots):
                    slots[:count] = ends
                    slots.sort(axis=0)
        for event, uses in pools.uses.items():
            i = self.index.get(event, -1)
            if i >= 0 and self.kind[i] == WAITING and i not in gates:
                gates[i] = _slot_gate(uses, holders_only)
        return gates

    def _held_slots(self, pool: str, size: int, holders: Sequence[Claim], now_ts: float) -> Array32:
        """A pool's slots as the times they free, sorted per sample (size x SAMPLES; more rows
        when more is held than the pool has now, after its size was lowered)."""
        ends = []
        for claim in holders:
            count = dict(claim.uses).get(pool, 0)
            if count:
                ends += [self._holds_until(claim, now_ts)] * count
        ends += [np.zeros(SAMPLES, dtype=np.float32)] * max(0, size - len(ends))
        out: Array32 = np.sort(np.vstack(ends), axis=0) if ends else np.zeros((0, SAMPLES), dtype=np.float32)
        return out

    def _holds_until(self, claim: Claim, now_ts: float) -> Array32:
        """When a holder finishes (seconds after now): its row's samples when the plan projects
        it, else its start plus its event's p50 (at least one tick from now)."""
        i = self.index.get(claim.event, -1) if claim.projected else -1
        if i >= 0 and self.kind[i] == RUNNING:
            row: Array32 = self.finish[i].copy()
            return row
        started = now_ts if claim.started_ts is None else claim.started_ts
        return np.full(SAMPLES, max(started + claim.p50_s - now_ts, self.tick_s), dtype=np.float32)

    def _run_rows(self, now_ts: float) -> None:
        """The running rows: now + the remaining time given how long each has run."""
        rows = self.rows(RUNNING)
        if not len(rows):
            return
        started = self.started[rows]
        elapsed = np.maximum(now_ts - np.where(np.isnan(started), now_ts, started), 0.0).astype(np.float32)
        left = self.remaining(rows, elapsed)
        delay = self.delay[rows]
        self.finish[rows] = left + delay[:, None].astype(np.float32) if delay.any() else left

    def remaining(self, rows: Rows, elapsed: Array32) -> Array32:
        """Remaining run time of each sample of the running `rows`, given their `elapsed`
        seconds: a sample of rank r among the c points above the elapsed time takes the
        point of rank r * c / SAMPLES among them (so the sample keeps its place in the
        Latin hypercube); with fewer than TAIL_MIN points above, the tail's quantile."""
        col = elapsed[:, None]
        ordered = self.sorted[rows]
        above = np.count_nonzero(ordered > col, axis=1).astype(np.int32)[:, None]
        # not past any point (above = SAMPLES) this is the sample's own draw: rank r is point r
        pick = ((2 * self.rank[rows] + 1) * above) >> _HALF_STEP  # // (2 * SAMPLES), a power of two
        pick += SAMPLES - above
        pick += np.arange(0, len(rows) * SAMPLES, SAMPLES, dtype=np.int32)[:, None]
        out = np.take(ordered, np.minimum(pick, ordered.size - 1)) - col
        tail = above[:, 0] < TAIL_MIN
        if tail.any():
            past = rows[tail]
            out[tail] = tail_left(
                self.rank[past], elapsed[tail].astype(np.float64), self.alpha[past], self.tail_from[past]
            )
        floored: Array32 = np.maximum(out, np.float32(self.tick_s), out=out)
        return floored

    # -- reading ---------------------------------------------------------------------------------------

    def miss_probability(self, rows: Rows) -> Array:
        """P(finish > deadline) of each of `rows` (each must have a deadline), from the last projection."""
        limit = (self.deadline[rows] - self.now_ts).astype(np.float32)
        odds: Array = (self.finish[rows] > limit[:, None]).mean(axis=1)
        return odds

    def start_row(self, i: int, *, pools: bool = True) -> Array32:
        """The start times of a waiting event's samples (seconds after now), from the last
        projection (`pools`: False: as if it used no pool)."""
        floor = max(float(self.opens[i]) - self.now_ts, 0.0) + float(self.delay[i])
        ups = [self.index[u] for u in self.graph.waits_for.get(self.names[i], ())]
        start = np.full(SAMPLES, floor, dtype=np.float32)
        if ups:
            start = np.maximum(start, self.finish[ups].max(axis=0))
        gate = self.gates.get(i) if pools else None
        return start if gate is None else np.maximum(start, gate)


def _slot_gate(uses: Uses, free: Mapping[str, Array32]) -> Array32:
    """When each sample has enough slots of every pool in `uses`: the n-th earliest free time
    of each pool, the latest of them; +inf for a pool no [pools] defines or too small."""
    gate = np.zeros(SAMPLES, dtype=np.float32)
    for name, count in uses:
        slots = free.get(name)
        if slots is None or count > len(slots):
            gate[:] = np.inf
        elif count > 0:
            np.maximum(gate, slots[count - 1], out=gate)
    return gate


def _gated(start: Array32, rows: Rows, gated: Rows, gates: Mapping[int, Array32]) -> Array32:
    """`start` (one row per `rows`) no earlier than the gates of those of them that have one."""
    at = np.flatnonzero(np.isin(rows, gated))
    if not len(at):
        return start
    out = start if start.flags.writeable else start.copy()
    for k in at.tolist():
        np.maximum(out[k], gates[int(rows[k])], out=out[k])
    return out


def quantiles(row: Array32, base_ts: float) -> tuple[float | None, float | None]:
    """(p50, p90) of a row of seconds after `base_ts`, as epoch seconds, nearest rank; None
    where it is unbounded (+inf)."""
    part = np.partition(row, (K50, K90))
    p50, p90 = float(part[K50]), float(part[K90])
    return (base_ts + p50 if np.isfinite(p50) else None), (base_ts + p90 if np.isfinite(p90) else None)


def rows_of(projector: Projector, names: Iterable[str]) -> Rows:
    return np.asarray([projector.index[n] for n in names], dtype=np.intp)
