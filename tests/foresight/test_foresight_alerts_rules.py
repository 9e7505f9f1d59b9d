"""The at_risk / projected_late rules and their texts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from evman.engine.foresight import AT_RISK, PROJECTED_LATE, Standing, build_graph, judge, occurrence, project
from evman.engine.foresight.projection import Plan, Projection
from evman.engine.foresight.rules import Verdict
from evman.engine.foresight.text import late_text, risk_text
from evman.engine.model import RunState

M = 60.0
MARGIN = 10 * M
DEADLINE = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
OCC = "2026-03-10T06:00:00+00:00"


def hist(p50_min: float, p90_min: float) -> tuple[float, ...]:
    return (p90_min * M,) * 10 + (p50_min * M,) * 10


def chain(now: datetime, *, build_elapsed_min: float, build_state: RunState = RunState.RUNNING) -> Plan:
    occs = [
        occurrence(
            "fetch",
            RunState.SUCCEEDED,
            hist(20, 25),
            started_at=now - timedelta(hours=2),
            ended_at=now - timedelta(minutes=build_elapsed_min),
        ),
        occurrence("build", build_state, hist(45, 50), started_at=now - timedelta(minutes=build_elapsed_min)),
        occurrence("publish", RunState.WAITING, hist(62, 76), deadline=DEADLINE),
    ]
    graph = build_graph([o.event for o in occs], {}, {"fetch": ["build"], "build": ["publish"]})
    return project(graph, {o.event: o for o in occs}, now, tick_s=1.0)


def test_the_late_text_reads_as_in_the_issue() -> None:
    plan = chain(datetime(2026, 3, 10, 5, 0, tzinfo=UTC), build_elapsed_min=35)
    assert late_text(plan, "publish", "UTC") == (
        "publish projected to miss 06:00 by 12 min (p50; p90 +31 min); "
        "path: fetch ✓ → build running 35/50 min → publish"
    )


def test_the_at_risk_text_gives_p90_margin_and_p50() -> None:
    plan = chain(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), build_elapsed_min=5)
    # p50: 03:00 + 40 + 62 = 04:42; p90: 03:00 + 45 + 76 = 05:01
    assert risk_text(plan, "publish", "Europe/London", MARGIN) == (
        "publish at risk of missing 06:00: p90 finish 05:01, 59 min before it (margin 10 min; "
        "p50 04:42, 78 min to spare); path: fetch ✓ → build running 5/50 min → publish"
    )


def test_an_unbounded_path_says_who_must_act() -> None:
    plan = chain(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), build_elapsed_min=5, build_state=RunState.FAILED)
    assert late_text(plan, "publish", "UTC") == (
        "publish will miss 06:00 unless someone acts: build failed with no retries left; "
        "path: fetch ✓ → build failed, no retries left → publish"
    )


def judged(
    row: Projection, occurrence: str, standings: Mapping[str, Standing], now: datetime = DEADLINE - timedelta(hours=1)
) -> tuple[list[Verdict], dict[str, Standing]]:
    return judge(row, occurrence, MARGIN, standings, now.timestamp())


def kinds(verdicts: list[Verdict], action: str) -> set[str]:
    return {v.kind for v in verdicts if v.action == action}


def test_on_time_opens_nothing() -> None:
    plan = chain(datetime(2026, 3, 10, 1, 0, tzinfo=UTC), build_elapsed_min=5)
    verdicts, standings = judged(plan["publish"], OCC, {})
    assert verdicts == [] and standings == {}


def test_at_risk_opens_when_p90_passes_deadline_minus_margin() -> None:
    # p90 finish: now + 45 + 76 min; past 05:50 when now > 03:49
    plan = chain(datetime(2026, 3, 10, 3, 50, tzinfo=UTC), build_elapsed_min=5)
    verdicts, standings = judged(plan["publish"], OCC, {})
    assert kinds(verdicts, "open") == {AT_RISK} and set(standings) == {AT_RISK}
    assert verdicts[0].slack_s == -60.0


def test_projected_late_holds_back_a_new_at_risk() -> None:
    plan = chain(datetime(2026, 3, 10, 5, 0, tzinfo=UTC), build_elapsed_min=35)
    verdicts, standings = judged(plan["publish"], OCC, {})
    assert kinds(verdicts, "open") == {PROJECTED_LATE} and set(standings) == {PROJECTED_LATE}


def test_it_pages_again_only_when_the_slack_worsens_by_another_margin() -> None:
    now = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    _, standings = judged(chain(now, build_elapsed_min=35)["publish"], OCC, {})
    assert standings[PROJECTED_LATE].paged_slack_s == -12 * M
    # the build overruns: each minute past its p50 pushes publish a minute later
    later = now + timedelta(minutes=19)  # build at 54 min: p50 finish 05:19:01 + 62 min
    verdicts, standings = judged(chain(later, build_elapsed_min=54)["publish"], OCC, standings)
    assert kinds(verdicts, "page") == set()
    later = now + timedelta(minutes=20, seconds=2)
    verdicts, standings = judged(chain(later, build_elapsed_min=55)["publish"], OCC, standings)
    assert kinds(verdicts, "page") == {PROJECTED_LATE}
    assert standings[PROJECTED_LATE].paged_slack_s <= -22 * M


def test_an_acknowledged_alert_does_not_page_again() -> None:
    now = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    acked = {PROJECTED_LATE: Standing(PROJECTED_LATE, OCC, -12 * M, is_acknowledged=True)}
    verdicts, standings = judged(chain(now + timedelta(minutes=40), build_elapsed_min=75)["publish"], OCC, acked)
    assert kinds(verdicts, "page") == set() and standings[PROJECTED_LATE].is_acknowledged


def test_it_resolves_after_two_on_time_evaluations_in_a_row() -> None:
    now = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    open_ = {AT_RISK: Standing(AT_RISK, OCC, -5 * M)}
    on_time = chain(now, build_elapsed_min=5)["publish"]
    verdicts, standings = judged(on_time, OCC, open_)
    assert verdicts == [] and standings[AT_RISK].on_time == 1
    late = chain(datetime(2026, 3, 10, 3, 55, tzinfo=UTC), build_elapsed_min=5)["publish"]
    verdicts, standings = judged(late, OCC, standings)
    assert verdicts == [] and standings[AT_RISK].on_time == 0  # the streak starts over
    _, standings = judged(on_time, OCC, standings)
    verdicts, standings = judged(on_time, OCC, standings)
    assert kinds(verdicts, "resolve") == {AT_RISK} and standings == {}


def test_finishing_in_time_resolves_and_finishing_late_opens_nothing() -> None:
    graph = build_graph(["publish"], {}, {})
    done = occurrence(
        "publish",
        RunState.SUCCEEDED,
        hist(10, 10),
        deadline=DEADLINE,
        started_at=DEADLINE - timedelta(minutes=20),
        ended_at=DEADLINE - timedelta(minutes=1),
    )
    open_ = {PROJECTED_LATE: Standing(PROJECTED_LATE, OCC, -3 * M), AT_RISK: Standing(AT_RISK, OCC, -3 * M)}
    verdicts, standings = judged(project(graph, {"publish": done}, DEADLINE)["publish"], OCC, open_)
    assert kinds(verdicts, "resolve") == {PROJECTED_LATE, AT_RISK} and standings == {}
    late = done._replace(ended_ts=(DEADLINE + timedelta(minutes=5)).timestamp())
    verdicts, standings = judged(project(graph, {"publish": late}, DEADLINE)["publish"], OCC, {})
    assert verdicts == [] and standings == {}


def test_the_next_occurrence_takes_over_an_old_alert() -> None:
    plan = chain(datetime(2026, 3, 10, 1, 0, tzinfo=UTC), build_elapsed_min=5)
    old = {PROJECTED_LATE: Standing(PROJECTED_LATE, "2026-03-09T06:00:00+00:00", -30 * M)}
    verdicts, standings = judged(plan["publish"], OCC, old)
    assert [(v.kind, v.action) for v in verdicts] == [(PROJECTED_LATE, "resolve")] and standings == {}


def test_an_unbounded_path_opens_projected_late_once() -> None:
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    row = chain(now, build_elapsed_min=5, build_state=RunState.FAILED)["publish"]
    verdicts, standings = judged(row, OCC, {})
    assert kinds(verdicts, "open") == {PROJECTED_LATE}
    verdicts, standings = judged(row, OCC, standings)
    assert verdicts == []


def test_past_the_deadline_nothing_opens_or_pages_again() -> None:
    late = chain(datetime(2026, 3, 10, 5, 0, tzinfo=UTC), build_elapsed_min=35)["publish"]
    verdicts, standings = judged(late, OCC, {}, now=DEADLINE)
    assert verdicts == [] and standings == {}
    paged = {PROJECTED_LATE: Standing(PROJECTED_LATE, OCC, 0.0)}
    verdicts, standings = judged(late, OCC, paged, now=DEADLINE + timedelta(minutes=1))
    assert verdicts == [] and standings[PROJECTED_LATE].paged_slack_s == 0.0
