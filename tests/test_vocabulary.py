"""The closed vocabularies are written once: every map keyed by one of them names each member
(a member added to the Enum and forgotten in a map fails here), and a stored string equals its
member (StrEnum), so rows and code compare without `.value`."""

from __future__ import annotations

import json
import sqlite3

import apprise
import pytest

from evman.console.views.contract import SHOWN_STATES, STATE_SYMBOLS
from evman.console.views.screen_rows import STATE_TONES, kind_tone
from evman.console.widgets.status_bar import COUNT_ORDER
from evman.console.widgets.tones import TONE_VARIABLES
from evman.engine.conditions.evaluate import STATE_WORDS
from evman.engine.model import (
    ALERT_KINDS,
    RESTARTABLE,
    AlertKind,
    Concurrency,
    Misfire,
    OnBlackout,
    OnHoliday,
    OnLost,
    RunState,
    Trigger,
    alert_facts,
)
from evman.engine.paging.notices import MANUAL_TRIGGERS
from evman.engine.paging.rules import ESCALATING, REPEATING
from evman.engine.stages.followups import RECOVERY_WORTHY
from evman.engine.store import RESOLVED_BY_SUCCESS

ENUMS = (RunState, AlertKind, Trigger, Concurrency, Misfire, OnLost, OnHoliday, OnBlackout)
TONES = {*TONE_VARIABLES, "muted", "plain"}


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_a_stored_string_equals_its_member(enum) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT)")
    db.executemany("INSERT INTO t VALUES (?)", [(m,) for m in enum])
    stored = [row[0] for row in db.execute("SELECT v FROM t")]
    assert stored == [m.value for m in enum]
    assert all(type(s) is str and s == m and {s: 1}[m] == 1 for s, m in zip(stored, enum, strict=True))
    assert json.loads(json.dumps(list(enum))) == [m.value for m in enum]
    assert [f"{m}" for m in enum] == [m.value for m in enum]


def test_every_alert_kind_has_its_facts() -> None:
    assert set(ALERT_KINDS) == set(AlertKind)
    severities = {n.value for n in apprise.NotifyType}
    for kind, facts in ALERT_KINDS.items():
        assert facts.severity in severities, kind
        assert facts.tone in TONES, kind
        assert not facts.recovers or facts.resolved_by_success, f"{kind}: recovers but is never resolved"


def test_the_sets_read_from_the_alert_kinds_table_are_what_they_were() -> None:
    """Pinned: the table replaced four hand-written sets and three maps; none changed."""
    # at_risk and projected_late stopped repeating with the clock when foresight learned to page
    # again on news only (engine/foresight/rules.py); projected_late still escalates
    assert REPEATING == {"failed", "overdue", "missed", "lost"}
    assert ESCALATING == REPEATING | {"projected_late"}
    assert set(RESOLVED_BY_SUCCESS) == {"failed", "lost", "missed", "overdue", "overrun", "late"}
    assert RECOVERY_WORTHY == {"failed", "lost", "missed"}
    assert {k for k, f in ALERT_KINDS.items() if f.while_waiting} == {"late", "missed"}
    assert {k: f.severity for k, f in ALERT_KINDS.items()} == {
        "failed": "failure",
        "lost": "failure",
        "missed": "failure",
        "delivery": "failure",
        "late": "warning",
        "overdue": "warning",
        "overrun": "warning",
        "too_fast": "warning",
        "at_risk": "warning",
        "projected_late": "failure",
        "recovered": "success",
        "no_occurrence": "warning",  # new with calendars: was "info" by omission from the old map
        "approval": "info",  # new with coordination: a question, and the notices of its answer
        "approved": "info",
        "rejected": "warning",
        "approval_timeout": "warning",
    }
    warn = {"late", "overrun", "too_fast", "delivery", "no_occurrence", "approval", "rejected", "approval_timeout"}
    assert {k: kind_tone(k) for k in AlertKind} == {
        k: "ok" if k in ("recovered", "approved") else "warn" if k in warn else "bad" for k in AlertKind
    }


def test_a_kind_this_version_does_not_know() -> None:
    assert alert_facts("from_the_future") is None
    assert kind_tone("from_the_future") == "bad"


def test_every_run_state_has_a_look_and_a_word() -> None:
    assert set(RunState) <= set(SHOWN_STATES)
    assert set(SHOWN_STATES) - set(RunState) == {"held", "idle"}
    assert set(STATE_WORDS) == set(RunState)
    assert all(look.tone in TONES and look.symbol for look in SHOWN_STATES.values())
    assert len({look.symbol for look in SHOWN_STATES.values()}) == len(SHOWN_STATES), "one symbol each"
    assert set(STATE_SYMBOLS) == set(STATE_TONES) == set(COUNT_ORDER) == set(SHOWN_STATES)


def test_restartable_and_manual_triggers() -> None:
    assert RESTARTABLE == {"failed", "killed", "lost", "missed", "skipped"}
    assert {"trigger", "restart"} == MANUAL_TRIGGERS
