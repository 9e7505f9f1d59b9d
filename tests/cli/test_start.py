"""The `evman` script's entry point (console/start.py): the plain console command line opens the
console without click; every other command line is click's, answered as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evman.console.cli.main import main as group
from evman.console.start import TICK_S, completing, plain_console
from evman.engine.store.targets import DEFAULT_DB, named_target
from tests.outside import ROOT

PLAIN = {
    (): {},
    ("--readonly",): {"--readonly": ""},
    ("--db", "x.db"): {"--db": "x.db"},
    ("--db=x.db", "--readonly"): {"--db": "x.db", "--readonly": ""},
    ("--readonly", "--db", "postgresql:///evman"): {"--readonly": "", "--db": "postgresql:///evman"},
    ("--db=",): {"--db": ""},
}
CLICKS = [
    ("--help",),
    ("-h",),
    ("--version",),
    ("list",),
    ("--db", "x.db", "list"),
    ("--db",),
    ("--db", "--readonly"),
    ("--db", "a.db", "--db", "b.db"),
    ("--readonly", "--readonly"),
    ("--tick", "0.5"),
    ("--no-ui",),
    ("--readonly=yes",),
    ("--read",),
    ("--",),
]


@pytest.mark.parametrize(("argv", "options"), PLAIN.items())
def test_a_plain_console_command_line_is_read_without_click(argv: tuple[str, ...], options: dict[str, str]) -> None:
    assert plain_console(argv) == options


@pytest.mark.parametrize("argv", CLICKS)
def test_every_other_command_line_is_left_to_click(argv: tuple[str, ...]) -> None:
    assert plain_console(argv) is None


def test_the_shell_asking_for_completions_is_left_to_click() -> None:
    assert completing({"_EVMAN_COMPLETE": "bash_source", "PATH": "/bin"})
    assert completing({"_EVMAN_DEV_COMPLETE": "zsh_complete"})  # the script under another name
    assert not completing({"EVMAN_DB": "x.db", "PATH": "/bin"})


def test_the_plain_console_ticks_as_clicks_default() -> None:
    tick = next(p for p in group.params if p.name == "tick_s")
    assert tick.default == TICK_S


def test_the_database_named_is_the_option_else_the_environment_else_evman_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVMAN_DB", raising=False)
    assert named_target(None) == Path(DEFAULT_DB) == named_target("")
    monkeypatch.setenv("EVMAN_DB", "env.db")
    assert named_target(None) == Path("env.db")
    assert named_target("given.db") == Path("given.db")
    assert named_target("postgresql:///evman") == "postgresql:///evman"


def run(entry: str, *argv: str, cwd: Path) -> tuple[int, str, str]:
    code = f"import sys; sys.argv[0] = 'evman'; from {entry} import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("--bogus",),
        ("--db",),
        ("--tick", "soon"),
        ("--db", "missing.db"),
        ("--readonly", "--db=missing.db"),
        ("--db", "missing.db", "list"),
    ],
)
def test_the_entry_point_answers_as_the_click_group_does(argv: tuple[str, ...], tmp_path: Path) -> None:
    """The same exit status and words through the script's entry point as through the group
    (a missing database: the console's own refusal, before it takes the terminal)."""
    ours = run("evman.console.start", *argv, cwd=tmp_path)
    clicks = run("evman.console.cli", *argv, cwd=tmp_path)
    assert ours == clicks
    assert ours[0] != 0 or argv == ("--help",)
    assert "Traceback" not in ours[2]
