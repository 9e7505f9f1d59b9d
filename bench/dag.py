"""W7's nights on a DAG: 13 events with a fan-out, fan-ins and a diamond, two deadlines.

    head ─┬─ extract-a ─┬─ merge ─┬─ model ──┬─ report ─┬─ publish ─┬─ notify
          ├─ extract-b ─┘         └─ score ──┤          │           │
          │                               └─ export ── audit ───────┘
          └─ extract-c ── enrich ─────────────────────┘

`head` falls due at 22:00; every other event waits (`requires`) for what it follows. Run
times are lognormal, each event its own sigma between 0.25 and 0.35, and 3 % of runs are
outliers (1.5 to 2.5 times longer). Deadlines: `publish` at a time of day and `notify`
relative to the head (`deadline = "+...m"`), each with 17 % and 23 % slack over the median
finish of its path (measured here by simulating the nominal nights).

A night is normal, or has one fault of five kinds:
- slow: a step on publish's critical path in the DAG's first half takes 2 to 4 times longer,
  always more than the slack;
- held: the head is held before it falls due and released after the last deadline;
- never: `report` requires a flag file that is missing all night (its `requires` never holds);
- down: the engine stops for 2 hours, starting in the first 3 hours of the night (no tick:
  runs in flight finish meanwhile, nothing new starts);
- retry: a long step on the critical path fails at 60-90 % of its run time and succeeds on
  its retry (5 minutes of backoff).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

FIRST_NIGHT: Final = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
OUTLIER_SHARE: Final = 0.03
KINDS: Final = ("normal", "slow", "held", "never", "down", "retry")
FAULTS: Final = KINDS[1:]
SLACK: Final = {"publish": 0.17, "notify": 0.23}
DEADLINES: Final = tuple(SLACK)
DOWN_S: Final = 2 * 3600.0
BACKOFF: Final = "5m"


@dataclass(frozen=True)
class Step:
    name: str
    median_min: float
    after: tuple[str, ...] = ()


STEPS: Final = (
    Step("head", 30),
    Step("extract-a", 90, ("head",)),
    Step("extract-b", 70, ("head",)),
    Step("extract-c", 45, ("head",)),
    Step("merge", 60, ("extract-a", "extract-b")),
    Step("enrich", 80, ("extract-c",)),
    Step("model", 100, ("merge",)),
    Step("score", 55, ("merge",)),
    Step("report", 45, ("model", "score")),
    Step("publish", 30, ("report", "enrich")),
    Step("export", 35, ("score",)),
    Step("audit", 70, ("export",)),
    Step("notify", 15, ("publish", "audit")),
)
SLOW_CANDIDATES: Final = ("head", "extract-a", "merge", "model")
"""Publish's critical path in the first half of the night."""
RETRY_CANDIDATES: Final = ("extract-a", "merge", "model")
FLAG: Final = "report-ready"


@dataclass(frozen=True)
class Shape:
    sigmas: dict[str, float]
    deadlines_min: dict[str, float]
    """Minutes after the head falls due."""


def shape(seed: int = 5) -> Shape:
    """Each step's sigma, and the deadlines from the median finish of 4,000 nominal nights."""
    rng = random.Random(seed)
    sigmas = {s.name: rng.uniform(0.25, 0.35) for s in STEPS}
    finishes: dict[str, list[float]] = {d: [] for d in DEADLINES}
    for _ in range(4000):
        took = {s.name: draw(rng, s.median_min * 60, sigmas[s.name]) for s in STEPS}
        ends = ends_of(took)
        for d in DEADLINES:
            finishes[d].append(ends[d])
    deadlines: dict[str, float] = {d: round(sorted(v)[len(v) // 2] / 60 * (1 + SLACK[d])) for d, v in finishes.items()}
    return Shape(sigmas, deadlines)


def draw(rng: random.Random, median_s: float, sigma: float) -> float:
    took = rng.lognormvariate(math.log(median_s), sigma)
    if rng.random() < OUTLIER_SHARE:
        took *= rng.uniform(1.5, 2.5)
    return took


def ends_of(took: dict[str, float]) -> dict[str, float]:
    """When each step ends (seconds after the head falls due), everything starting as soon as it can."""
    ends: dict[str, float] = {}
    for step in STEPS:
        ends[step.name] = max((ends[a] for a in step.after), default=0.0) + took[step.name]
    return ends


def definitions(shape_: Shape, root: Path, flags: Path, ops_url: str, lead_url: str) -> str:
    """The 13 events as TOML, paging route `ops` (escalating to `lead` after 30 min)."""
    parts = ['[defaults]\ntimezone = "UTC"\ndriver = "ops"\n']
    parts.append(
        f'[routes]\nops = {{ urls = ["{ops_url}"], escalate_to = "lead", escalate_after = "30m" }}\n'
        f'lead = ["{lead_url}"]\n'
    )
    publish_at = FIRST_NIGHT + timedelta(minutes=shape_.deadlines_min["publish"])
    for step in STEPS:
        lines = [
            f'[[event]]\nname = "{step.name}"\ncall = "bench.simjobs:job"\ncwd = "{root}"',
            f'on_failure = {{ retries = 2, backoff = "{BACKOFF}" }}',
        ]
        if not step.after:
            lines.append('schedule = "every day at 22:00"')
        else:
            needs = [f'success({a}, "12h")' for a in step.after]
            if step.name == "report":
                needs.append(f'exists("{flags / FLAG}")')
            lines.append(f"requires = '{' and '.join(needs)}'")
        if step.name == "publish":
            lines.append(f'deadline = "{publish_at:%H:%M}"')
        if step.name == "notify":
            lines.append(f'deadline = "+{shape_.deadlines_min["notify"]:.0f}m"')
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


@dataclass
class NightPlan:
    start: datetime
    kind: str
    took: dict[str, float]
    """Seconds each step's (last) attempt takes."""
    fail_after: dict[str, float] = field(default_factory=dict)
    """Steps whose first attempt fails, after this many seconds."""
    down_at_s: float | None = None
    """The engine stops this long after 22:00, for DOWN_S."""
    what: str = ""


def plan_night(rng: random.Random, shape_: Shape, start: datetime, kind: str) -> NightPlan:
    took = {s.name: draw(rng, s.median_min * 60, shape_.sigmas[s.name]) for s in STEPS}
    night = NightPlan(start, kind, took)
    slack_s = 60 * shape_.deadlines_min["publish"] - sum(
        s.median_min * 60 for s in STEPS if s.name in ("head", "extract-a", "merge", "model", "report", "publish")
    )
    if kind == "slow":
        name = rng.choice(SLOW_CANDIDATES)
        median = next(s.median_min for s in STEPS if s.name == name) * 60
        factor = max(rng.uniform(2.0, 4.0), 1 + (slack_s + 900) / median)
        took[name] = median * factor * rng.lognormvariate(0, 0.1)
        night.what = f"{name} {factor:.1f}x"
    elif kind == "retry":
        name = rng.choice(RETRY_CANDIDATES)
        night.fail_after[name] = took[name] * rng.uniform(0.6, 0.9)
        night.what = f"{name} fails at {night.fail_after[name] / 60:.0f} min"
    elif kind == "down":
        night.down_at_s = rng.uniform(0, 3 * 3600)
        night.what = f"engine down {night.down_at_s / 60:.0f}-{(night.down_at_s + DOWN_S) / 60:.0f} min"
    return night


def schedule(rng: random.Random, per_kind: int, normal: int) -> list[str]:
    kinds = ["normal"] * normal + [k for k in FAULTS for _ in range(per_kind)]
    rng.shuffle(kinds)
    return kinds
