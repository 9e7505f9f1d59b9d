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
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

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

    def add(self, workload: str, system: str, name: str, unit: str, value: float, note: str = "") -> None:
        key = (workload, system, name)
        if key not in self.metrics:
            self.metrics[key] = Metric(workload, system, name, unit, note=note)
        self.metrics[key].values.append(value)

    def get(self, workload: str, system: str, name: str) -> Metric | None:
        return self.metrics.get((workload, system, name))

    def median(self, workload: str, system: str, name: str) -> float | None:
        m = self.get(workload, system, name)
        return None if m is None or not m.values else m.median

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


def table(metrics: Iterable[Metric]) -> str:
    rows = [("workload", "system", "metric", "median", "min–max", "n")]
    for m in metrics:
        spread = f"{fmt(m.low)}–{fmt(m.high)}" if len(m.values) > 1 else ""
        rows.append((m.workload, m.system, f"{m.name} ({m.unit})", fmt(m.median), spread, str(len(m.values))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]),
                 r[3].rjust(widths[3]), r[4].rjust(widths[4]), r[5].rjust(widths[5])]
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
