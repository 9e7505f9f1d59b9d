"""examples/publishing.toml: it validates, and it runs headless as a real `evman --no-ui` process.

The example's launch announcement must be out within 8 s of the engine's start (a relative
window, `latest = "+8s"`) and nobody signs it off, so its window is missed in any plain run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.outside import evman_argv, rows
from tests.stages.stage_helpers import EXAMPLES, ROOT

pytestmark = pytest.mark.backends

GENERATED = ("feeds", "site", "outbox", "state", "*.db", "*.db-*", "*.db.logs", "__pycache__")


def test_the_example_validates() -> None:
    done = subprocess.run(
        evman_argv("validate", str(EXAMPLES / "publishing.toml")), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "10 event(s)" in done.stdout and "all valid" in done.stdout


def _all_seen(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        done = {(r["event"], r["state"]) for r in rows(db, "SELECT event, state FROM runs")}
        retried = rows(
            db, "SELECT 1 FROM runs WHERE event = 'sync-media' AND trigger = 'retry' AND state = 'succeeded'"
        )
    except sqlite3.OperationalError:
        return False
    wanted = {
        ("announce-launch", "missed"),
        ("notify-subscribers", "succeeded"),
        ("collect-garbage", "succeeded"),
        ("send-reminders", "succeeded"),
    }
    return wanted <= done and bool(retried)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns(*GENERATED))
    return tmp_path / "examples"


def test_the_example_runs_headless_with_its_chain_its_retry_and_its_missed_window(
    workdir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "pub.db"
    env = {**os.environ, "EVMAN_DB": str(db), "TZ": midday_zone()}
    env.pop("EVMAN_OPERATOR", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(evman_argv(*args), capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done

    cli("load", str(workdir / "publishing.toml"))
    log = open(tmp_path / "engine.log", "wb")
    engine = subprocess.Popen(
        evman_argv("--no-ui", "--db", str(db)),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 45
        while not _all_seen(db) and time.monotonic() < deadline and engine.poll() is None:
            time.sleep(0.25)
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=30) == 0
    finally:
        if engine.poll() is None:
            os.killpg(engine.pid, signal.SIGKILL)
        log.close()
    assert _all_seen(db), (tmp_path / "engine.log").read_text()[-3000:]

    history = json.loads(cli("history", "--json", "-n", "500").stdout)
    alerts = json.loads(cli("alerts", "--json").stdout)
    _check_chain(history)
    _check_retry(history)
    _check_missed(history, alerts)
    assert not [r for r in history if r["state"] in ("running", "lost")], "SIGTERM waited for its commands"
    notes = (workdir / "outbox" / "notifications.txt").read_text()
    assert notes.count("To: ") >= 3 and "new stories are live" in notes
    assert json.loads((workdir / "feeds" / "today.json").read_text())["items"]


def midday_zone() -> str:
    """A zone where it is about noon now: the example's times of day are the machine's, and its
    production window is 06:00-22:00 (the test failed after 22:00 UTC on a UTC machine)."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # hours east of UTC, -12..11
    return f"Etc/GMT{-offset:+d}"  # the Etc zones' signs are POSIX's: Etc/GMT-3 is UTC+3


def _by_id(history: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in history}


def _parent(runs: dict[int, dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    assert run["triggered_by"] and run["triggered_by"].startswith("run:"), run
    return runs[int(run["triggered_by"].split(":")[1])]


def _check_chain(history: list[dict[str, Any]]) -> None:
    """notify <- production <- test <- build <- fetch: each started after the one before succeeded."""
    runs = _by_id(history)
    notify = min(
        (r for r in history if r["event"] == "notify-subscribers" and r["state"] == "succeeded"), key=lambda r: r["id"]
    )
    assert notify["trigger"] == "condition"
    expected = [
        ("promote-to-production", "on_success"),
        ("promote-to-test", "on_success"),
        ("build-site", "on_success"),
        ("fetch-feeds", "schedule"),
    ]
    child = notify
    for event, trigger in expected:
        parent = _parent(runs, child)
        assert (parent["event"], parent["state"], parent["trigger"]) == (event, "succeeded", trigger)
        assert parent["ended_at"] <= child["started_at"], (parent, child)
        child = parent
    fetch = child
    assert [c["ok"] for c in fetch["checks"]] == [True]


def _check_retry(history: list[dict[str, Any]]) -> None:
    runs = _by_id(history)
    retry = min((r for r in history if r["event"] == "sync-media" and r["trigger"] == "retry"), key=lambda r: r["id"])
    first = runs[retry["repeats_run_id"]]
    assert (first["state"], first["attempt"], first["trigger"], first["exit_code"]) == ("failed", 1, "schedule", 75)
    assert "CDN timed out" in first["output_tail"]
    assert (retry["state"], retry["attempt"]) == ("succeeded", 2)
    assert "--- prepare: rm -f state/sync-media.lock" in retry["output_tail"]
    assert retry["started_at"] > first["ended_at"]


def _check_missed(history: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> None:
    (launch,) = [r for r in history if r["event"] == "announce-launch"]
    assert (launch["state"], launch["trigger"], launch["started_at"]) == ("missed", "reboot", None)
    assert "window closed at" in launch["reason"]
    assert "success(editor-sign-off) is false" in launch["reason"]
    (missed,) = [a for a in alerts if a["kind"] == "missed"]
    assert (missed["event"], missed["run_id"]) == ("announce-launch", launch["id"])
    assert not [a for a in alerts if a["kind"] == "failed"], "the flaky step recovered by retry"


def test_make_sample_db_leaves_a_morning_of_history(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ten hours of what examples/make_sample_db.py builds as sample.db."""
    monkeypatch.setenv("TZ", "UTC")
    from examples import make_sample_db

    db = tmp_path / "sample.db"
    counts = make_sample_db.build(db, hours=10, examples=workdir)
    assert counts["succeeded"] > 100 and counts["missed"] == 1
    runs = rows(db, "SELECT * FROM runs ORDER BY id")
    kinds = {(a["kind"], a["event"], a["status"]) for a in rows(db, "SELECT * FROM alerts")}
    assert ("missed", "announce-launch", "open") in kinds
    assert {("failed", "sync-media", "resolved"), ("recovered", "sync-media", "resolved")} <= kinds
    assert [r for r in runs if r["trigger"] == "retry" and r["state"] == "succeeded"]
    overnight = [r for r in runs if r["event"] == "promote-to-production"][0]
    assert overnight["started_at"].startswith("2026-03-02T06:00"), "waited for its window"
    assert any(r["ended_at"] > r["started_at"] for r in runs if r["started_at"]), "runs have durations"
    (ack,) = rows(db, "SELECT * FROM requests WHERE verb = 'ack'")
    assert (ack["requested_by"], ack["outcome"]) == ("ops-oncall", "ok")
    assert rows(db, "SELECT stopped_at FROM engine")[0]["stopped_at"] is not None
