"""The request verbs are one table (engine/verbs/table.py): the requests stage dispatches through
it, `evman <verb>` and the console's keys and actions are built from it, and the mailbox page is
checked against it. A verb's options reach the engine as the request's args."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from evman.console.cli.main import main
from evman.console.cli.verbs import OWN_COMMANDS, command_for
from evman.console.screens.registry import KEYS
from evman.engine.store import open_store
from evman.engine.verbs import VERBS, HandlerIn, Option, Verb, verb_named
from evman.engine.verbs.table import TARGETS
from tests.engine_cli import ROOT
from tests.outside import found

MAILBOX = ROOT / "docs" / "guides" / "mailbox.md"


def test_every_row_is_whole() -> None:
    names = [v.name for v in VERBS]
    assert len(set(names)) == len(names)
    for verb in VERBS:
        assert callable(verb.handler) and verb.summary.endswith(".") and verb.examples
        assert all(e.startswith(f"evman {verb.name} ") for e in verb.examples), verb.name
        assert verb.targets and set(verb.targets) <= set(TARGETS), verb.name
        assert len({o.key for o in verb.options}) == len(verb.options)
        assert bool(verb.run_states) == verb.takes("run"), f"{verb.name}: which runs its key may name"
        assert verb.key is None or (verb.label and verb.what), f"{verb.name}: a key needs a label and what it does"
        assert verb_named(f"  {verb.name.upper()} ") is verb
    assert verb_named("approve-everything") is None


def test_each_row_names_a_handler_that_exists() -> None:
    """A row names its handler by module and function (imported at its first request): each
    name must lead to a function of engine/verbs/ that takes (tick, target, args, who)."""
    for verb in VERBS:
        assert isinstance(verb.handler, HandlerIn), verb.name
        function = verb.handler.resolve()
        assert function.__module__ == f"evman.engine.verbs.{verb.handler.module}", verb.name
        assert list(inspect.signature(function).parameters) == ["tick", "target", "args", "who"], verb.name


def test_the_cli_has_a_command_per_verb_built_from_its_row() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"]).output
    for verb in VERBS:
        assert re.search(rf"^  {verb.name} ", listed, re.M), verb.name
        shown = runner.invoke(main, [verb.name, "--help"], prog_name="evman")
        assert shown.exit_code == 0, shown.output
        assert shown.output.startswith(f"Usage: evman {verb.name} [OPTIONS] ")
        text = " ".join(shown.output.split())
        assert " ".join(verb.summary.split()) in text and verb.more in text
        assert all(" ".join(e.split()) in text.replace("- ", "-") for e in verb.examples), text
        for option in verb.options:
            assert f"{option.flag} " in shown.output and option.help in text
    assert set(OWN_COMMANDS) <= {v.name for v in VERBS}, "a command of its own for a verb the table has not"
    assert all(OWN_COMMANDS[name].help == found(verb_named(name)).help for name in OWN_COMMANDS)


def test_the_console_has_a_key_per_verb_that_has_one() -> None:
    keys = {k.action: k for k in KEYS if k.asks}
    assert list(keys) == [v.name for v in VERBS if v.key is not None]
    for verb in VERBS:
        if verb.key is not None:
            key = keys[verb.name]
            assert (key.key, key.label, key.what) == (verb.key, verb.label, verb.what)
            assert key.binding_action == f"screen.request('{verb.name}')"
    every = [k.key for k in KEYS]
    assert len(set(every)) == len(every), "a verb's key is taken by another key"


def test_the_mailbox_page_lists_every_verb_and_only_those() -> None:
    """The command line's page is made from the commands themselves (mkdocs-click, checked by
    tests/docs); the mailbox page's list of verbs another program may write is checked here."""
    (listed,) = re.findall(r"^\| `verb` \| (.*) \|$", MAILBOX.read_text(), re.M)
    assert re.findall(r"`([a-z-]+)`", listed) == [v.name for v in VERBS], f"{MAILBOX}: the verb row"


def test_an_option_reaches_the_engine_as_args(tmp_path: Path) -> None:
    """A flag is sent as true only when given; a value as the text typed (no engine runs: the
    request stays queued, as `evman` says)."""
    db = tmp_path / "evman.db"
    store = open_store(db)
    store.execute_many(
        "INSERT INTO events (name, spec, kind, timezone, created_at, updated_at) VALUES ('job', '{}', 'run', 'UTC', ?, ?)",
        [("2026-01-05T00:00:00+00:00", "2026-01-05T00:00:00+00:00")],
    )
    scratch = Verb(
        "snooze",
        VERBS[0].handler,
        "Snooze EVENT.",
        ("evman snooze job --until 06:00",),
        options=(
            Option("--until", "until", "Until when.", metavar="TIME", parse=lambda text, now: f"{text}@{now.year}"),
            Option("--loud", "loud", "Say so."),
        ),
    )
    runner = CliRunner()
    for argv, args in (
        (["job"], None),
        (["job", "--until", "06:00"], {"until": f"06:00@{datetime.now(UTC).year}"}),
        (["job", "--loud"], {"loud": True}),
    ):
        done = runner.invoke(command_for(scratch), [*argv, "--db", str(db)])
        assert done.exit_code == 0 and "queued as request" in done.output, done.output
        row = store.dicts("SELECT verb, target, args FROM requests ORDER BY id DESC LIMIT 1")[0]
        assert (row["verb"], row["target"]) == ("snooze", "job")
        assert (json.loads(row["args"]) if row["args"] else None) == args
    store.close()


def test_evman_list_builds_no_request_verb(tmp_path: Path) -> None:
    """The verbs are made on demand: `evman list` imports neither the table nor the tick."""
    db = tmp_path / "evman.db"
    open_store(db).close()
    code = (
        "import sys\nfrom evman.console.cli import main\n"
        f"sys.argv = ['evman', 'list', '--db', {str(db)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('evman.engine.verbs', 'evman.engine.tick'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
