"""Every example in the README and on the documentation site runs, as a reader would run it
(tests/docs/doc_examples.py says how a page's blocks are read)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from doc_examples import BIN, NOT_RUN, REPO, Block, Page, blocks, commands, matches, not_run_reason, pages

PAGES = pages()
PORTS = ("8787", "8788", "8789")
"""The receivers' ports a page names: each test gets free ones instead (other tests run at once)."""
PROGRAMS = ("sqlite3",)
"""Programs a page runs that a developer's machine may lack (.ci/run installs them)."""
PG_URL = "postgresql://evman@db1/batch"
"""The PostgreSQL database a page names: the test's own server stands in for it."""


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_page_examples_run(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    text = path.read_text(encoding="utf-8")
    for program in PROGRAMS:
        if f"$ {program} " in text and shutil.which(program) is None:
            why = f"{path.name} runs {program}, which is not installed (Debian: apt-get install {program})"
            if os.environ.get("CI"):
                pytest.fail(f"CI must run every example, but {why}", pytrace=False)
            pytest.skip(why)
    substitutions = {port: free_port() for port in PORTS if port in text}
    if PG_URL in text:
        substitutions[PG_URL] = request.getfixturevalue("pg_dsn")
    page = Page(path, tmp_path, substitutions)
    page.run_all()
    for line, command, reason in page.skipped:
        assert reason, f"{path.name}:{line}: {command} was not run without a reason"


def test_the_readme_first_definitions_validate(tmp_path: Path) -> None:
    """The first thing a newcomer copies: the README's first definitions file is valid as it stands
    (it once named an event `gc` the file did not define)."""
    first = next(b for b in blocks((REPO / "README.md").read_text()) if b.lang == "toml")
    Page(REPO / "README.md", tmp_path).handle(first, set())


# -- the harness itself: a check that cannot fail checks nothing -------------------------------------


def test_a_wrong_output_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```console\n$ echo hello\ngoodbye\n```\n")
    with pytest.raises(AssertionError, match="goodbye"):
        Page(page, tmp_path / "run").run_all()


def test_an_invalid_definitions_block_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('```toml title="defs.toml"\n[[event]]\nname = "a"\nrun = "true"\nrequires = "success(gc)"\n```\n')
    (tmp_path / "run").mkdir()
    with pytest.raises(AssertionError, match="gc"):
        Page(page, tmp_path / "run").run_all()


def test_a_failing_command_without_output_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```console\n$ false\n```\n")
    (tmp_path / "run").mkdir()
    with pytest.raises(AssertionError, match="exit status 1"):
        Page(page, tmp_path / "run").run_all()


def test_a_block_nobody_can_run_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nprint('hi')\n```\n")
    with pytest.raises(AssertionError, match="cannot run"):
        Page(page, tmp_path).run_all()


def test_state_carries_from_command_to_command(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ export GREETING=hi\n$ mkdir -p sub && cd sub\n$ echo $GREETING from $(basename $PWD)\n"
        "hi from sub\n$ ls /nonexistent\n...No such file or directory\n$ echo $?\n2\n```\n"
    )
    Page(page, tmp_path).run_all()


def test_output_matching_rules() -> None:
    assert matches("a ... c", "a b c")
    assert matches("RUN  EVENT\n1    x", "RUN EVENT\n1 x")
    assert not matches("a c", "a b c")


def test_commands_split_and_continue() -> None:
    block = Block("console", None, "$ evman load \\\n  defs.toml\nloaded\n$ evman list\n", 1)
    got = list(commands(block))
    assert [c.text for c in got] == ["evman load \n  defs.toml", "evman list"]
    assert got[0].want == "loaded"


def test_not_run_is_only_what_cannot_run_here() -> None:
    assert not_run_reason("pipx install evman")
    assert not_run_reason("uv run evman --db sample.db")
    assert not_run_reason("evman validate defs.toml") is None
    assert not_run_reason("evman --no-ui > engine.log 2>&1 &") is None
    assert all(re.compile(pattern) for pattern, _ in NOT_RUN)


def service_units() -> list[tuple[str, Block]]:
    return [
        (f"{page.relative_to(REPO)}:{block.line}", block)
        for page in PAGES
        for block in blocks(page.read_text(encoding="utf-8"))
        if block.title and block.title.endswith(".service")
    ]


@pytest.mark.parametrize("where,unit", service_units(), ids=[w for w, _ in service_units()])
def test_a_systemd_unit_s_command_runs_and_stops_cleanly(where: str, unit: Block, tmp_path: Path) -> None:
    """What systemd would do with the unit a page shows: start its ExecStart in its
    WorkingDirectory, then stop it with its KillSignal, within its TimeoutStopSec (the evman it
    names is the one under test, and /srv/batch a folder of the test's)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.text)
    service = parser["Service"]
    work = tmp_path / "srv-batch"
    work.mkdir()
    argv = shlex.split(service["ExecStart"].replace("/srv/batch", str(work)))
    assert Path(argv[0]).name == "evman" and "--no-ui" in argv, f"{where}: ExecStart runs evman headless: {argv}"
    argv[0] = str(BIN / "evman")
    (work / "defs.toml").write_text('[[event]]\nname = "tick"\nrun = "true"\nschedule = "every 1 seconds"\n')
    db = argv[argv.index("--db") + 1]
    subprocess.run([argv[0], "load", str(work / "defs.toml"), "--db", db], check=True, capture_output=True)
    cwd = service.get("WorkingDirectory", "/").replace("/srv/batch", str(work))
    log = tmp_path / "journal.txt"
    with log.open("wb") as out:
        engine = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "engine started" not in log.read_text() and time.monotonic() < deadline:
            assert engine.poll() is None, f"{where}: it exited at once:\n{log.read_text()}"
            time.sleep(0.1)
        assert "engine started" in log.read_text(), log.read_text()
        kill = getattr(signal, service.get("KillSignal", "SIGTERM"))
        engine.send_signal(kill)
        code = engine.wait(timeout=float(service.get("TimeoutStopSec", "90").rstrip("s")))
    finally:
        if engine.poll() is None:
            os.killpg(engine.pid, signal.SIGKILL)
            engine.wait()
    assert code == 0, f"{where}: stopped with status {code}:\n{log.read_text()}"
    assert "engine stopped" in log.read_text()
