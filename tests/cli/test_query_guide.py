"""docs/guides/query-history.md: every sqlite-utils command it shows, run as written on a
database with a day of history (the one the previous commit made), says what the guide says."""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.outside import ROOT

GUIDE = ROOT / "docs" / "guides" / "query-history.md"
HISTORY = ROOT / "tests" / "data" / "databases" / "history-c18d7f1.db"
SQLITE_UTILS = Path(sys.executable).parent / "sqlite-utils"


def guide_commands() -> list[list[str]]:
    """The argv of each ```sh block of the guide (one command per block)."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [shlex.split(block) for block in blocks]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The history database, plus one run that failed a minute ago (for the last-24-hours query)."""
    path = tmp_path / "evman.db"
    shutil.copyfile(HISTORY, path)
    path.chmod(0o600)
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO runs (event, state, trigger, scheduled_for, created_at, started_at, ended_at, exit_code) "
            "VALUES ('fresh', 'failed', 'trigger', ?, ?, ?, ?, 3)",
            (now, now, now, now),
        )
    conn.close()
    return path


def run(argv: list[str], db: Path) -> str:
    """`argv` on `db` through sqlite-utils' own command line, in this process (one interpreter
    start instead of one per command; the installed command is run once, below)."""
    from sqlite_utils.cli import cli

    assert argv[0] == "sqlite-utils" and argv[2] == "evman.db", argv
    done = CliRunner().invoke(cli, [argv[1], str(db), *argv[3:]], catch_exceptions=False)
    assert done.exit_code == 0, (argv, done.output)
    return done.stdout


def test_the_installed_sqlite_utils_command_reads_an_evman_database(db: Path) -> None:
    done = subprocess.run(
        [str(SQLITE_UTILS), "tables", str(db), "--counts", "-t"], capture_output=True, text=True, timeout=60, check=True
    )
    assert re.search(r"runs\s+69\b", done.stdout)


def test_the_guide_shows_the_commands_this_test_checks() -> None:
    firsts = [argv[1] for argv in guide_commands()]
    assert firsts == ["tables", "schema", "query", "query", "query", "query", "query", "rows", "query"]


def test_every_command_of_the_guide_runs_and_answers_its_question(db: Path) -> None:
    tables, schema, states, failures, last_day, durations, alerts, requests, csv = (
        run(argv, db) for argv in guide_commands()
    )
    assert re.search(r"runs\s+69\b", tables) and re.search(r"alerts\s+1\b", tables)
    assert "CREATE TABLE" in schema and "scheduled_for TEXT NOT NULL" in schema
    assert re.search(r"extract\s+succeeded\s+24\b", states) and re.search(r"flaky\s+failed\s+7\b", states)
    assert failures.count("exit code 1") == 7 and "fresh" in failures
    assert re.search(r"fresh\s+1\b", last_day) and "flaky" not in last_day  # the day of history was long ago
    assert re.search(r"extract\s+24\s+0", durations)
    assert re.search(r"failed\s+flaky\s+3\b", alerts)
    assert re.search(r"hold\s+paused\s+fixture\s+ok", requests) and "trigger  extract" in requests
    assert csv.splitlines()[0].startswith("id,event,state") and len(csv.splitlines()) == 25
