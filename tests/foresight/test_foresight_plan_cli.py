"""`evman plan` on a database the real engine built (examples/make_nightly_db.py: 20 nights
of simulated history, tonight caught at 01:55 with transform slow), run as a process."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evman.console.views.plan import KEYS
from evman.engine.clock import parse_iso
from evman.engine.foresight import nearest_rank
from tests.outside import evman_argv, rows

AT = "2026-03-21T01:55:00+00:00"


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from examples import make_nightly_db

    out = tmp_path_factory.mktemp("nightly") / "nightly.db"
    counts = make_nightly_db.build(out)
    assert counts == {"running": 1, "succeeded": 122}
    return out


def evman(db: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(evman_argv(*args, "--db", str(db)), capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    return done


def plan(db: Path, *args: str) -> dict[str, dict[str, Any]]:
    data = json.loads(evman(db, "plan", "--json", "--at", AT, *args).stdout)
    return {row["event"]: row for row in data}


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def test_plan_json_has_exactly_the_contract_keys_in_iso_utc(nightly: Path) -> None:
    data = json.loads(evman(nightly, "plan", "--json", "--at", AT).stdout)
    assert data and all(list(row) == list(KEYS) for row in data)
    for row in data:
        for key in ("deadline", "projected_start", "finish_p50", "finish_p90"):
            assert row[key] is None or row[key].endswith("+00:00"), (key, row)
    assert [r["event"] for r in data][:3] == ["publish-reports", "new-report", "refresh-dashboards"]


def test_plan_rows_follow_tonights_runs(nightly: Path) -> None:
    p = plan(nightly)
    transform, publish = p["transform"], p["publish-reports"]
    assert transform["state"] == "running" and transform["deadline"] is None and transform["slack_s"] is None
    running = rows(nightly, "SELECT started_at FROM runs WHERE state = 'running'")
    assert transform["projected_start"] == running[0]["started_at"]
    # transform is past its p90: one tick left, at both quantiles
    assert parse_iso(transform["finish_p50"]) == parse_iso(AT) + timedelta(seconds=1)
    assert publish["critical_path"] == ["extract", "transform", "load-warehouse", "publish-reports"]
    assert publish["deadline"] == "2026-03-21T03:30:00.000000+00:00"
    slack = (parse_iso(publish["deadline"]) - parse_iso(publish["finish_p50"])).total_seconds()
    assert publish["slack_s"] == pytest.approx(slack, abs=0.001) and 0 < slack < 3600
    assert (publish["confidence"], publish["samples"]) == ("history", 20)
    assert (p["new-report"]["confidence"], p["new-report"]["samples"]) == ("low", 0)
    assert p["backup"]["state"] == "succeeded" and p["backup"]["deadline"] == "2026-03-21T04:00:00.000000+00:00"


def test_plan_durations_are_the_ones_show_prints(nightly: Path) -> None:
    durations = sorted(
        (parse_iso(r["ended_at"]) - parse_iso(r["started_at"])).total_seconds()
        for r in rows(
            nightly,
            "SELECT started_at, ended_at FROM runs WHERE event = 'load-warehouse' "
            "AND state = 'succeeded' ORDER BY ended_at DESC LIMIT 20",
        )
    )
    stats = json.loads(evman(nightly, "show", "load-warehouse", "--json").stdout)["stats"]
    assert stats["count"] == 20
    assert stats["p50_s"] == pytest.approx(nearest_rank(durations, 0.5), abs=0.001)
    assert stats["p90_s"] == pytest.approx(nearest_rank(durations, 0.9), abs=0.001)
    load = plan(nightly)["load-warehouse"]
    took = parse_iso(load["finish_p50"]) - parse_iso(load["projected_start"])
    assert took.total_seconds() == pytest.approx(stats["p50_s"], abs=0.01)


def test_what_if_moves_the_plan_and_writes_nothing(nightly: Path) -> None:
    before = digest(nightly)
    base, slowed = plan(nightly), plan(nightly, "--what-if", "load-warehouse=2x", "--what-if", "extract=+30m")
    assert digest(nightly) == before
    assert base["publish-reports"]["slack_s"] > 0 > slowed["publish-reports"]["slack_s"]
    load_p50 = (
        parse_iso(base["load-warehouse"]["finish_p50"]) - parse_iso(base["load-warehouse"]["projected_start"])
    ).total_seconds()
    assert base["publish-reports"]["slack_s"] - slowed["publish-reports"]["slack_s"] == pytest.approx(
        load_p50, abs=0.01
    )
    assert slowed["extract"] == base["extract"]  # extract has finished: a delay changes nothing


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--what-if", "load-warehouse=3"), "neither a factor nor a delay"),
        (("--what-if", "lod-warehouse=3x"), "no event 'lod-warehouse' in the plan"),
        (("--at", "yesterday"), "--at 'yesterday' is neither an ISO time nor HH:MM"),
    ],
)
def test_bad_plan_arguments_say_what_is_wrong(nightly: Path, args: tuple[str, ...], said: str) -> None:
    before = digest(nightly)
    done = evman(nightly, "plan", *args, code=2)
    assert said in done.stderr and done.stdout == ""
    assert digest(nightly) == before


def test_plan_text_shows_the_numbers_and_the_path(nightly: Path) -> None:
    out = subprocess.run(
        evman_argv("plan", "--at", AT, "--db", str(nightly)),
        capture_output=True,
        text=True,
        timeout=60,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("plan at 2026-03-21 01:55 UTC; at_risk margin 10 min")
    publish = next(line for line in lines if line.startswith("publish-reports"))
    assert "03:30" in publish and "history (20)" in publish
    assert "extract ✓ → transform running" in publish and publish.endswith("→ load-warehouse → publish-reports")
    assert datetime.fromisoformat(AT).strftime("%H:%M") in lines[0]
