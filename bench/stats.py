"""Series of measurements, their medians and spreads, and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100.0 * len(ordered) + 0.5))))
    return ordered[rank - 1]


@dataclass
class Metric:
    """One measured quantity of one system in one workload, one value per repetition."""

    workload: str
    system: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    """One per repetition: the measured value, or the median of that repetition's samples."""
    note: str = ""
    p99s: list[float] = field(default_factory=list)
    """The p99 of each repetition's samples, for a quantity measured many times per repetition
    (a tick, a run's lateness); empty for one-number quantities (a throughput)."""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def p99(self) -> float | None:
        """The median over repetitions of each repetition's p99; None without samples."""
        return statistics.median(self.p99s) if self.p99s else None

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")


@dataclass
class Target:
    """A target from the issue, judged on ratios measured in the same run."""

    workload: str
    text: str
    measured: str
    met: bool | None
    """None when it could not be judged (a peer or a piece is missing)."""


class Results:
    def __init__(self) -> None:
        self.metrics: dict[tuple[str, str, str], Metric] = {}
        self.notes: list[str] = []
        self.targets: list[Target] = []

    def add(
        self, workload: str, system: str, name: str, unit: str, value: float, note: str = "", p99: float | None = None
    ) -> None:
        """One repetition's value; for a quantity sampled many times in it, `value` is the
        samples' median and `p99` their 99th percentile (printed beside every median)."""
        key = (workload, system, name)
        if key not in self.metrics:
            self.metrics[key] = Metric(workload, system, name, unit, note=note)
        self.metrics[key].values.append(value)
        if p99 is not None:
            self.metrics[key].p99s.append(p99)

    def add_samples(
        self, workload: str, system: str, name: str, unit: str, samples: Sequence[float], note: str = ""
    ) -> None:
        """One repetition's samples: their median and p99."""
        self.add(workload, system, name, unit, statistics.median(samples), note, p99=percentile(samples, 99))

    def get(self, workload: str, system: str, name: str) -> Metric | None:
        return self.metrics.get((workload, system, name))

    def median(self, workload: str, system: str, name: str) -> float | None:
        m = self.get(workload, system, name)
        return None if m is None or not m.values else m.median

    def p99(self, workload: str, system: str, name: str) -> float | None:
        m = self.get(workload, system, name)
        return None if m is None else m.p99

    def note(self, text: str) -> None:
        self.notes.append(text)

    def target(self, workload: str, text: str, measured: str, met: bool | None) -> None:
        self.targets.append(Target(workload, text, measured, met))


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.4f}"


TABLE_LEGEND = (
    "median and p99: of a repetition's samples (its ticks, its runs' lateness), "
    "then the median over repetitions; min–max: the repetitions' medians. "
    "A quantity measured once per repetition (a throughput) has no p99 (-)."
)


def table(metrics: Iterable[Metric]) -> str:
    rows = [("workload", "system", "metric", "median", "p99", "min–max", "n")]
    for m in metrics:
        spread = f"{fmt(m.low)}–{fmt(m.high)}" if len(m.values) > 1 else ""
        p99 = fmt(m.p99) if m.p99 is not None else "-"
        rows.append((m.workload, m.system, f"{m.name} ({m.unit})", fmt(m.median), p99, spread, str(len(m.values))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [
            r[0].ljust(widths[0]),
            r[1].ljust(widths[1]),
            r[2].ljust(widths[2]),
            *(r[k].rjust(widths[k]) for k in range(3, len(r))),
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets_table(targets: Iterable[Target]) -> str:
    lines = []
    for t in targets:
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[t.met]
        lines.append(f"{t.workload:<3} {verdict:<8} {t.text}: {t.measured}")
    return "\n".join(lines)
