"""The runs each event must keep whatever its horizon, found incrementally: the first pass reads
an event's runs once (in pages), later passes only the runs that appeared or finished since."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from evman.engine.ranks import HISTORY_RUNS

PAGE: Final = 5000
ACTIVE: Final = frozenset({"waiting", "running"})


@dataclass
class History:
    """What one event keeps, as read up to `upto` (every run with a lower id had finished)."""

    upto: int = 0
    last_of: dict[str, int] = field(default_factory=dict)
    """state -> its newest run."""
    successes: dict[int, str] = field(default_factory=dict)
    """The newest HISTORY_RUNS succeeded runs: id -> ended_at."""

    def add(self, run_id: int, state: str, ended_at: str | None) -> None:
        self.last_of[state] = max(run_id, self.last_of.get(state, 0))
        if state == "succeeded" and ended_at is not None:
            self.successes[run_id] = ended_at
            if len(self.successes) > HISTORY_RUNS:
                oldest = min(self.successes, key=lambda i: (self.successes[i], i))
                del self.successes[oldest]

    def ids(self) -> set[int]:
        return set(self.last_of.values()) | set(self.successes)

    def logs(self) -> set[int]:
        """The runs whose log is kept too: the last of each outcome (the last failure's output
        is what an operator opens); the last successes keep their rows, for their durations."""
        return set(self.last_of.values())


class KeptRuns:
    """event -> what it keeps (History: last of every outcome, last successes), read
    through the store's runs_after (runs_event index) and remembered between passes."""

    def __init__(self) -> None:
        self._histories: dict[str, History] = {}

    def of(self, store: Any, event: str) -> History:
        history = self._histories.setdefault(event, History())
        cursor, first_active = history.upto, None
        while True:
            rows = store.runs_after(event, cursor, PAGE)
            for run_id, state, ended_at in ((int(r[0]), str(r[1]), r[2]) for r in rows):
                if state not in ACTIVE:
                    history.add(run_id, state, ended_at)
                elif first_active is None:
                    first_active = run_id
            if rows:
                cursor = int(rows[-1][0])
            if len(rows) < PAGE:
                break
        # an active run may finish in another state: read again from it next time
        history.upto = cursor if first_active is None else first_active - 1
        return history

    def forget(self, event: str) -> None:
        self._histories.pop(event, None)
