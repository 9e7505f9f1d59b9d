"""Shell completion: verbs and options from click, event names from the database, in a real bash
that sourced what `_EVMAN_COMPLETE=bash_source evman` prints (docs/install.md's line)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from evman.console.cli.main import main
from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.store import open_store

EVMAN = str(Path(sys.executable).parent / "evman")
DEFS = """
[[event]]
name = "extract"
run = "true"
[[event]]
name = "export-orders"
run = "true"
[[event]]
name = "report"
run = "true"
"""


@pytest.fixture
def db(tmp_path: Path, clock: FakeClock) -> Path:
    path = tmp_path / "night.db"
    store = open_store(path, create=True)
    catalog.save(store, parse_definitions(DEFS, source="defs.toml", base_dir=tmp_path), now=clock.now())
    store.close()
    return path


@pytest.fixture(scope="module")
def bash_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `eval "$(_EVMAN_COMPLETE=bash_source evman)"` evaluates, made once."""
    done = subprocess.run(
        [EVMAN], env={**os.environ, "_EVMAN_COMPLETE": "bash_source"}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "complete -o nosort -F _evman_completion evman" in done.stdout, done.stderr
    path = tmp_path_factory.mktemp("completion") / "evman.bash"
    path.write_text(done.stdout)
    return path


def complete(source: Path, line: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> list[str]:
    """What bash offers for `line` (completing its last word), with evman's completion sourced."""
    script = textwrap.dedent(
        f"""
        . {source}
        COMP_WORDS=({line})
        [[ "{line}" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        COMP_LINE="{line}"
        _evman_completion evman
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVMAN_")}
    base["PATH"] = f"{Path(EVMAN).parent}:{base.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script], env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_event_names_complete_as_the_target(bash_source: Path, db: Path, tmp_path: Path) -> None:
    assert complete(bash_source, f"evman trigger --db {db} ex") == ["export-orders", "extract"]
    assert complete(bash_source, f"evman --db {db} hold re") == ["report"]  # --db before the verb
    assert complete(bash_source, "evman show ", env={"EVMAN_DB": str(db)}) == ["export-orders", "extract", "report"]
    (tmp_path / "evman.db").write_bytes(db.read_bytes())
    assert complete(bash_source, "evman history e", cwd=tmp_path) == ["export-orders", "extract"]  # ./evman.db
    assert complete(bash_source, f"evman alerts --db {db} --event rep") == ["report"]


def test_run_and_alert_targets_and_a_missing_database_offer_nothing(
    bash_source: Path, db: Path, tmp_path: Path
) -> None:
    assert complete(bash_source, f"evman restart --db {db} run:") == []
    assert complete(bash_source, f"evman trigger --db {tmp_path / 'none.db'} e") == []  # and no error in the shell
    assert not (tmp_path / "none.db").exists(), "completion creates no database"


def test_verbs_and_options_complete_from_click(bash_source: Path) -> None:
    assert complete(bash_source, "evman tr") == ["trigger"]
    assert "--json" in complete(bash_source, "evman history --")


def test_every_verb_that_names_an_event_completes_it(db: Path) -> None:
    """A new verb with an EVENT or TARGET argument (or an --event option) completes event names:
    each such parameter's completion, asked in-process, offers the database's events."""
    names: list[str] = []
    listing = click.Context(main)
    for name in main.list_commands(listing):  # the request verbs too (made on demand)
        command = main.get_command(listing, name)
        assert command is not None, name
        for param in command.params:
            if param.name in ("event", "target"):
                with click.Context(main, info_name="evman") as root:
                    root.params["db"] = str(db)
                    ctx = click.Context(command, parent=root, info_name=name)
                    offered = [item.value for item in param.shell_complete(ctx, "")]
                assert offered == ["export-orders", "extract", "report"], f"evman {name} {param.name}: {offered}"
                names.append(name)
    assert {"trigger", "show", "history", "hold", "ack", "alerts", "next"} <= set(names)
