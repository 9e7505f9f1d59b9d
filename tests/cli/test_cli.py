"""The `evman` command as users and programs meet it: real processes, real files."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner

from evman.console.cli.main import main
from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from tests.engine_cli import (
    ROOT,
    SETTLE_S,
    cli,
    kill_running_commands,  # noqa: F401 (an autouse fixture)
    rows,
    runs,
    start_engine_process,
    wait_until,
)

Make = Callable[..., Engine]


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def evman(*args: str, env: dict[str, str] | None = None, subprocess: bool = False) -> Done:
    """`evman ARGS`, in this process through click's runner (fast) or as a real process.

    In process, an exception escaping the command fails the test: in a terminal it would
    have been a traceback."""
    if subprocess:
        done = cli(*args, env=env)
        return Done(done.returncode, done.stdout, done.stderr)
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"evman {' '.join(args)} raised") from result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


def one_line_error(done: Done) -> str:
    """Assert a failed command said one line on stderr and no traceback; return that line."""
    assert done.returncode != 0, done
    err = done.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


# -- validate ---------------------------------------------------------------------------------

GOOD = """
[defaults]
timezone = "UTC"

[[event]]
name = "fetch"
shell = "echo fetched"
schedule = "every 2 seconds"
"""

MALFORMED = [
    # the line added to a valid event named "fetch", its key, and what the message must say
    ('schedule = "*/15 * * *"', "schedule", "cron needs 5 fields"),
    ('runtime = { max = "5 minutes" }', "runtime.max", "Invalid duration '5 minutes'"),
    ('colour = "red"', "colour", "unknown key 'colour'; expected one of: name, run"),
    ('timezone = "Mars/Olympus"', "timezone", "unknown timezone 'Mars/Olympus'"),
    ('shell = "echo"', "shell", "given together with 'run'"),
    ('concurrency = "parallel"', "concurrency", 'expected "skip" or "queue" or "replace"'),
    ('misfire = "sometimes"', "misfire", 'expected "once" or "all" or "skip"'),
    ('on_success = ["nobody"]', "on_success", "unknown event 'nobody'"),
    ('requires = "success(fetch"', "requires", "missing ')'"),
    ('requires = "success(ghost)"', "requires", "unknown event 'ghost'"),
    ('window = { earliest = "25:00" }', "window.earliest", "Invalid time of day '25:00'"),
    ("on_failure = { retries = -1 }", "on_failure.retries", "expected an integer of 0 or more"),
    ("outputs = [ { fresh = true } ]", "outputs[0].path", "missing; expected the file"),
    ("env = { FLAG = true }", "env.FLAG", "expected a string"),
]


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    defs = tmp_path / "good.toml"
    defs.write_text(GOOD)
    done = cli("validate", str(defs))
    assert done.returncode == 0, done.stderr
    assert "1 event(s)" in done.stdout and "all valid" in done.stdout


@pytest.mark.parametrize(("line", "key", "says"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_validate_names_file_event_and_key(tmp_path: Path, line: str, key: str, says: str) -> None:
    defs = tmp_path / "broken.toml"
    defs.write_text(f'[[event]]\nname = "fetch"\nrun = "true"\n{line}\n')
    result = CliRunner().invoke(main, ["validate", str(defs)])
    assert result.exit_code == 2
    assert result.stdout == ""
    message = result.stderr
    assert message.startswith(f"{defs}:4: event 'fetch': ")  # the line of the key
    assert f"key '{key}'" in message or f"unknown key '{key}'" in message
    assert says in message


def test_validate_of_a_toml_syntax_error_and_of_a_cycle(tmp_path: Path) -> None:
    syntax = tmp_path / "syntax.toml"
    syntax.write_text('[[event]\nname = "a"\n')
    result = CliRunner().invoke(main, ["validate", str(syntax)])
    assert result.exit_code == 2 and result.stderr.startswith(f"{syntax}:1:8: TOML syntax")
    cycle = tmp_path / "cycle.toml"
    cycle.write_text(
        '[[event]]\nname = "a"\nrun = "true"\nrequires = "success(b)"\n'
        '[[event]]\nname = "b"\nrun = "true"\nrequires = "success(a)"\n'
    )
    result = CliRunner().invoke(main, ["validate", str(cycle)])
    assert result.exit_code == 2 and "dependency cycle" in result.stderr and "key 'requires'" in result.stderr


def test_a_malformed_load_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert evman("load", str(good), "--db", str(db)).returncode == 0
    before = rows(db, "SELECT name, spec FROM events")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        GOOD.replace(
            'schedule = "every 2 seconds"',
            'schedule = "every 2 seconds"\n[[event]]\nname = "new"\nrun = "true"\nschedule = "61 * * * *"',
        )
    )
    done = evman("load", str(bad), "--db", str(db))
    assert done.returncode == 2 and "event 'new': key 'schedule'" in done.stderr
    assert rows(db, "SELECT name, spec FROM events") == before


def test_an_empty_file_with_prune_retires_nothing_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert evman("load", str(good), "--db", str(db)).returncode == 0
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    done = evman("load", str(empty), "--prune", "--db", str(db))
    assert done.returncode == 2
    assert "would retire all 1 event(s)" in done.stderr and "--allow-empty" in done.stderr
    assert rows(db, "SELECT name, defined FROM events") == [{"name": "fetch", "defined": 1}]
    assert evman("load", str(empty), "--prune", "--allow-empty", "--db", str(db)).returncode == 0
    assert rows(db, "SELECT name, defined FROM events") == [{"name": "fetch", "defined": 0}]


# -- load, --no-ui, history ---------------------------------------------------------------------


def test_load_then_headless_engine_runs_every_2_seconds_and_history_shows_it(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    defs = tmp_path / "defs.toml"
    defs.write_text(GOOD.replace('"echo fetched"', '"echo fetched run $EVMAN_RUN_ID; echo warn >&2"'))
    loaded = cli("load", str(defs), "--db", str(db))
    assert loaded.returncode == 0 and "1 added" in loaded.stdout, loaded.stderr
    log = tmp_path / "engine.log"
    engine = start_engine_process(db, log=log)
    try:
        wait_until(
            lambda: len([r for r in runs(db) if r["state"] == "succeeded"]) >= 2, timeout=30, what="two finished runs"
        )
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=30) == 0
    assert "engine started on" in log.read_text() and "engine stopped" in log.read_text()
    history = cli("history", "--json", "--db", str(db))
    assert history.returncode == 0, history.stderr
    done = [r for r in json.loads(history.stdout) if r["state"] == "succeeded"]
    assert len(done) >= 2
    for run in done:
        assert run["exit_code"] == 0 and run["trigger"] == "schedule"
        assert isinstance(run["duration_s"], float) and 0 <= run["duration_s"] < 10
        assert run["output_tail"] == f"fetched run {run['id']}\nwarn\n"
    fires = sorted(datetime.fromisoformat(r["scheduled_for"]) for r in done)
    assert all(b - a == timedelta(seconds=2) for a, b in zip(fires, fires[1:], strict=False))


# -- next ---------------------------------------------------------------------------------------

AFTER = "2026-03-07T12:00:00-05:00"
NY_FIRES = ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00", "2026-03-10T06:30:00+00:00"]


def next_json(*args: str) -> dict[str, Any]:
    done = evman("next", *args, "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_next_for_a_cron_schedule_across_the_spring_gap() -> None:
    data = next_json("--schedule", "30 2 * * *", "--tz", "America/New_York", "--after", AFTER, "-n", "3")
    fires = data["fires"]
    assert [f["utc"] for f in fires] == NY_FIRES
    assert [f["local"] for f in fires] == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]
    assert "DST gap" in str(fires[0]["note"]) and fires[1]["note"] is None
    text = evman(
        "next", "--schedule", "30 2 * * *", "--tz", "America/New_York", "--after", AFTER, "-n", "3", subprocess=True
    )
    assert "shifted past DST gap (02:30 does not exist)" in text.stdout


def test_next_for_every_specs() -> None:
    daily = next_json("--schedule", "every day at 02:30", "--tz", "America/New_York", "--after", AFTER, "-n", "3")
    assert [f["utc"] for f in daily["fires"]] == NY_FIRES
    hours = next_json("--schedule", "every 2 hours", "--tz", "UTC", "--after", "2026-01-05T10:15:00+00:00", "-n", "2")
    assert [f["utc"] for f in hours["fires"]] == ["2026-01-05T12:15:00+00:00", "2026-01-05T14:15:00+00:00"]
    fall = next_json(
        "--schedule",
        "every day at 01:30",
        "--tz",
        "America/New_York",
        "--after",
        "2026-10-31T12:00:00-04:00",
        "-n",
        "2",
    )
    assert [f["utc"] for f in fall["fires"]] == ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]


@pytest.mark.parametrize("zone", ["Europe", "Mars/Olympus", "../../etc/passwd", "x" * 5000])
def test_next_with_a_zone_that_is_not_one_says_so(zone: str) -> None:
    done = evman("next", "--schedule", "0 1 * * *", "--tz", zone)  # in process: a traceback fails
    assert done.returncode == 2
    assert "unknown timezone" in done.stderr and "Europe/London" in done.stderr
    assert len(done.stderr) < 300  # a huge name is cut, not echoed


@pytest.mark.parametrize("verb", [["next", "--schedule", "0 1 * * *"], ["history"], ["alerts"]])
def test_a_count_below_one_is_refused(verb: list[str], tmp_path: Path) -> None:
    done = evman(*verb, "-n", "-3", "--db", str(tmp_path / "none.db"))
    assert done.returncode == 2 and "-3 is not in the range x>=1" in done.stderr


def test_next_for_an_event_uses_its_schedule_and_zone(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    defs = tmp_path / "defs.toml"
    defs.write_text(
        '[[event]]\nname = "nightly"\nrun = "true"\nschedule = "30 2 * * *"\ntimezone = "America/New_York"\n'
    )
    assert evman("load", str(defs), "--db", str(db)).returncode == 0
    data = next_json("nightly", "--after", AFTER, "-n", "3", "--db", str(db))
    assert data["event"] == "nightly" and data["timezone"] == "America/New_York"
    assert [f["utc"] for f in data["fires"]] == NY_FIRES


# -- errors: one line, non-zero, no traceback -----------------------------------------------------


@pytest.fixture
def loaded_db(tmp_path: Path) -> Path:
    db = tmp_path / "evman.db"
    defs = tmp_path / "defs.toml"
    defs.write_text(GOOD)
    assert evman("load", str(defs), "--db", str(db)).returncode == 0
    return db


@pytest.mark.parametrize(
    "verb", [["show", "fecth"], ["history", "fecth"], ["next", "fecth"], ["trigger", "fecth"], ["hold", "fecth"]]
)
def test_unknown_event_is_one_line(loaded_db: Path, verb: list[str]) -> None:
    line = one_line_error(evman(*verb, "--db", str(loaded_db), subprocess=verb[0] == "show"))
    assert "unknown event 'fecth'" in line and "Did you mean 'fetch'?" in line
    assert rows(loaded_db, "SELECT count(*) AS n FROM requests")[0]["n"] == 0


@pytest.mark.parametrize(
    "verb", [["list"], ["show", "fetch"], ["history"], ["alerts"], ["trigger", "fetch"], ["export"], ["--no-ui"]]
)
def test_missing_database_file_is_one_line(tmp_path: Path, verb: list[str]) -> None:
    missing = tmp_path / "nowhere.db"
    line = one_line_error(evman(*verb, "--db", str(missing), subprocess=verb[0] in ("list", "--no-ui")))
    assert f"{missing} does not exist" in line
    assert not missing.exists()


def test_database_from_evman_db_variable(loaded_db: Path) -> None:
    done = evman("list", "--json", env={"EVMAN_DB": str(loaded_db)})
    assert done.returncode == 0 and json.loads(done.stdout)[0]["name"] == "fetch"


@pytest.mark.parametrize(
    "verb",
    [
        ["trigger", "fetch"],
        ["load", "{defs}"],
        ["hold", "fetch"],
        ["import-crontab", str(ROOT / "tests/data/cron.d/php")],
    ],
)
def test_locked_database_is_one_line(loaded_db: Path, verb: list[str]) -> None:
    args = [a.replace("{defs}", str(loaded_db.parent / "defs.toml")) for a in verb]
    holder = sqlite3.connect(loaded_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = evman(
            *args, "--db", str(loaded_db), env={"EVMAN_BUSY_TIMEOUT_MS": "200"}, subprocess=verb[0] == "trigger"
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = one_line_error(done)
    assert f"{loaded_db} stayed locked by another writer for 0.2 s" in line


# -- --json shapes ------------------------------------------------------------------------------

RUN_KEYS = {
    "id",
    "event",
    "state",
    "trigger",
    "attempt",
    "scheduled_for",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "output_tail",
}
ALERT_KEYS = {"id", "kind", "event", "run_id", "created_at", "deliveries", "acknowledged_by", "acknowledged_at"}
EVENT_KEYS = {"name", "state", "schedule", "next_fire_at", "held"}
SHOW_KEYS = EVENT_KEYS | {"waiting_reason", "window", "runtime", "stats", "runs"}
STATES = {"waiting", "running", "succeeded", "failed", "killed", "missed", "skipped", "lost", "idle"}


def test_json_of_list_show_history_alerts_has_the_design_keys(
    engine_factory: Make, clock: FakeClock, db_path: Path
) -> None:
    engine = engine_factory("""
        [[event]]
        name = "good"
        run = "true"
        schedule = "*/5 * * * *"
        [[event]]
        name = "bad"
        shell = "echo oops; exit 3"
        schedule = "*/5 * * * *"
    """)
    clock.advance(timedelta(minutes=5))
    engine.settle(clock.now(), timeout_s=SETTLE_S)

    def read(*args: str) -> object:
        done = evman(*args, "--json", "--db", str(db_path))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    listed = read("list")
    assert isinstance(listed, list) and {e["name"] for e in listed} == {"good", "bad"}
    for item in listed:
        assert EVENT_KEYS <= item.keys() and item["state"] in STATES and item["held"] is False
    shown = read("show", "bad")
    assert isinstance(shown, dict) and SHOW_KEYS <= shown.keys()
    assert shown["state"] == "failed" and shown["runs"][0]["exit_code"] == 3
    history = read("history")
    assert isinstance(history, list) and len(history) == 2
    for run in history:
        assert RUN_KEYS <= run.keys() and run["state"] in STATES
    assert {r["event"]: r["state"] for r in history} == {"good": "succeeded", "bad": "failed"}
    alerts = read("alerts")
    assert isinstance(alerts, list) and len(alerts) == 1
    assert ALERT_KEYS <= alerts[0].keys()
    assert (alerts[0]["kind"], alerts[0]["event"]) == ("failed", "bad")
    assert isinstance(alerts[0]["deliveries"], list)


# -- import-crontab -------------------------------------------------------------------------------


def test_import_of_an_etc_cron_d_file(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    source = ROOT / "tests" / "data" / "cron.d" / "local-jobs"
    done = evman("import-crontab", str(source), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "imported 3 event(s)" in done.stdout
    events = {r["name"]: json.loads(r["spec"]) for r in rows(db, "SELECT name, spec FROM events")}
    by_schedule = {spec["schedule"]: spec for spec in events.values()}
    assert set(by_schedule) == {"@reboot", "30 4 * * mon-fri", "15 3 1,15 * *"}
    assert by_schedule["30 4 * * mon-fri"]["user"] == "postgres"
    assert by_schedule["30 4 * * mon-fri"]["shell"] == "/usr/local/bin/vacuum.sh >> /var/log/vacuum.log 2>&1"
    assert by_schedule["@reboot"]["user"] == "www-data"
    assert "rotate-uploads" in events  # the `# evman: name=...` directive
    for spec in events.values():
        assert spec["env"]["HOME"] == "/srv/app" and "MAILTO" not in spec["env"]
    listed = json.loads(evman("list", "--json", "--db", str(db)).stdout)
    assert {e["name"] for e in listed} == set(events)


def test_import_refuses_an_anacrontab_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "evman.db"
    done = evman("import-crontab", str(ROOT / "tests" / "data" / "crontabs" / "anacrontab"), "--db", str(db))
    assert done.returncode == 2 and "anacrontab" in done.stderr and "Traceback" not in done.stderr
    assert not db.exists() or rows(db, "SELECT count(*) AS n FROM events")[0]["n"] == 0
