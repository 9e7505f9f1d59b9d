"""Each event's history of successes (its last HISTORY_RUNS durations, newest first) as the
foresight stage keeps it: read from the store the first time, then kept up to date from the
ended runs the stage reads anyway when a run of the event ends. A recompute at 10,000 events
no longer reads 20 runs again for each of the ~25 events whose run just succeeded (~2 ms and
500 rows a minute); a success that ended before one already counted (two runs at once) is
read from the store again, so the order stays the store's. (A success the stage was not told
of, a run another engine ended, comes in at the event's next change if it ended within the
last 12 hours, the runs read then.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from evman.engine.foresight.current import RunFacts
from evman.engine.model import RunState
from evman.engine.ranks import HISTORY_RUNS
from evman.engine.store import Store


class Histories:
    def __init__(self) -> None:
        self.counted: dict[str, set[int]] = {}
        """event -> its successes among the recent runs already in its history."""
        self.newest: dict[str, datetime] = {}
        """event -> when the newest success in its history ended."""

    def read(
        self,
        store: Store,
        names: Iterable[str],
        ended: Mapping[str, Sequence[RunFacts]],
        known: Mapping[str, Sequence[float]],
    ) -> dict[str, list[float]]:
        """The history of each of `names` whose history changed or was never read: `known` is
        its history so far, `ended` its runs ended recently (every success since its history
        was read is among them)."""
        out: dict[str, list[float]] = {}
        fresh = []
        for name in names:
            new = [r for r in _successes(ended.get(name, ())) if r.id not in self.counted.get(name, ())]
            newest = self.newest.get(name)
            if name not in known or name not in self.counted or any(newest and _ended(r) < newest for r in new):
                fresh.append(name)
            elif new:
                new.sort(key=_ended, reverse=True)
                out[name] = ([_took(r) for r in new] + list(known[name]))[:HISTORY_RUNS]
                self._count(name, new)
        if fresh:
            out.update(store.succeeded_durations(fresh))
            for name in fresh:
                self.counted[name] = set()
                self.newest.pop(name, None)
                self._count(name, _successes(ended.get(name, ())))
        return out

    def _count(self, name: str, runs: Sequence[RunFacts]) -> None:
        self.counted.setdefault(name, set()).update(r.id for r in runs)
        ends = [r.ended_at for r in runs if r.ended_at is not None]
        if ends:
            self.newest[name] = max([*ends, self.newest[name]] if name in self.newest else ends)


def _successes(runs: Iterable[RunFacts]) -> list[RunFacts]:
    return [
        r for r in runs if r.state is RunState.SUCCEEDED and r.started_at is not None and r.ended_at is not None
    ]  # fmt: skip


def _ended(run: RunFacts) -> datetime:
    assert run.ended_at is not None
    return run.ended_at


def _took(run: RunFacts) -> float:
    assert run.started_at is not None and run.ended_at is not None
    return max(0.0, (run.ended_at - run.started_at).total_seconds())
