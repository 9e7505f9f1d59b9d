"""The reference pages against the code: every verb and option, definitions key, console key,
`--json` key, table column, exit status and environment variable the code has is on its page.
The lists come from the code itself (the click tree, the validator's key tables, the key
registry and the screens' bindings, the output of every `--json` verb, a new database's schema,
the exit statuses and EVMAN_ names in the source), so a new one fails here until it is documented."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import pkgutil
import re
import sqlite3
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from evman.console.cli.main import main
from evman.engine.clock import FakeClock
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier
from evman.engine.store import Store, open_store
from tests.receivers import HttpReceiver

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference"
HEADING = re.compile(r"^(#+)\s+(.*?)\s*(?:\{#([\w-]+)\})?\s*$")


def sections(path: Path) -> dict[str, str]:
    """A page's sections by their `{#id}` (else their heading text), each up to the next heading."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        fenced ^= line.lstrip().startswith("```")
        heading = None if fenced else HEADING.match(line)
        if heading:
            current = found.setdefault(heading[3] or heading[2], [line])
        else:
            current.append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def first_cells(text: str) -> set[str]:
    """The backticked names in the first column of a section's tables (`a`, `b` both count)."""
    names: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2 and not set(cells[1].strip()) <= {"-", ":"}:
            names.update(re.findall(r"`([^`]+)`", cells[1]))
    return names


def undocumented(want: set[str], have: set[str]) -> list[str]:
    return sorted(want - have)


# -- the command line ------------------------------------------------------------------------------


class _Sections(HTMLParser):
    """The text of a built page under each heading id."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, list[str]] = {}
        self.current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if re.fullmatch(r"h[1-6]", tag) and ident:
            self.current = ident

    def handle_data(self, data: str) -> None:
        self.text.setdefault(self.current, []).append(data)


def built_sections(page: Path) -> dict[str, str]:
    parser = _Sections()
    parser.feed(page.read_text(encoding="utf-8"))
    return {k: "".join(v) for k, v in parser.text.items()}


def cli_commands() -> Iterator[tuple[str, click.Command]]:
    """Every command, the request verbs (made on demand from the verb table) included."""
    yield "evman", main
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None, name
        yield f"evman-{name}", command


def test_every_verb_and_option_is_on_the_cli_page(built_site: Path) -> None:
    page = built_sections(built_site / "reference" / "cli" / "index.html")
    missing = []
    for anchor, command in cli_commands():
        if anchor not in page:
            missing.append(f"verb {anchor.replace('-', ' ', 1)}")
            continue
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                missing += [f"{anchor}: {opt}" for opt in param.opts + param.secondary_opts if opt not in page[anchor]]
            elif isinstance(param, click.Argument) and param.human_readable_name not in page[anchor]:
                missing.append(f"{anchor}: argument {param.human_readable_name}")
    assert not missing, f"not on docs/reference/cli.md: {missing}"


def test_every_page_is_in_the_navigation(built_site: Path) -> None:
    home = (built_site / "index.html").read_text(encoding="utf-8")
    docs = REPO / "docs"
    for page in docs.rglob("*.md"):
        if "_hooks" in page.parts:
            continue
        rel = page.relative_to(docs).with_suffix("")
        url = "" if rel.as_posix() == "index" else (rel.parent if rel.name == "index" else rel).as_posix() + "/"
        assert (built_site / url / "index.html").exists(), f"{page} was not built"
        assert f'href="{url or "."}' in home or f'href="./{url}' in home, f"{url} is not in the navigation"


# -- the definitions file --------------------------------------------------------------------------


def key_tables() -> dict[str, tuple[str, ...]]:
    """Every `*_KEYS` table of the definitions validators, by the anchor its section carries
    (EVENT_KEYS: {#event-keys})."""
    import evman.engine.definitions as package

    found: dict[str, tuple[str, ...]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if name.endswith("_KEYS") and isinstance(value, tuple) and all(isinstance(v, str) for v in value):
                found[name.lower().replace("_", "-")] = value
    return found


def test_every_definitions_key_is_on_its_page() -> None:
    page = sections(REFERENCE / "definitions.md")
    tables = key_tables()
    assert {"event-keys", "defaults-keys", "route-keys", "output-keys", "on-failure-keys"} <= set(tables)
    problems = []
    for anchor, keys in sorted(tables.items()):
        if anchor not in page:
            problems.append(f"no section {{#{anchor}}} for {keys}")
            continue
        documented = first_cells(page[anchor])
        problems += [f"{{#{anchor}}}: {k} is not described" for k in undocumented(set(keys), documented)]
        problems += [
            f"{{#{anchor}}}: {k} is described but the validator has no such key" for k in documented - set(keys)
        ]
    assert not problems, "docs/reference/definitions.md: " + "; ".join(problems)


# -- the console -----------------------------------------------------------------------------------


KEY_NAMES = {"slash": "/", "question_mark": "?"}


def console_bindings() -> dict[str, set[str]]:
    """Every key the console binds, by the class that binds it."""
    import evman.console.screens as screens
    from evman.console.app.evman_app import EvmanApp
    from evman.console.widgets.line_table import LineTable

    owners: list[type] = [EvmanApp, LineTable]
    for info in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"{screens.__name__}.{info.name}")
        owners += [
            v
            for v in vars(module).values()
            if isinstance(v, type) and v.__module__.startswith("evman.") and "BINDINGS" in vars(v)
        ]
    found: dict[str, set[str]] = {}
    for owner in owners:
        for binding in vars(owner).get("BINDINGS", []):
            keys = binding.key if hasattr(binding, "key") else binding[0]
            for key in str(keys).split(","):
                found.setdefault(KEY_NAMES.get(key.strip(), key.strip()), set()).add(owner.__name__)
    return found


def test_every_console_key_is_on_its_page() -> None:
    from evman.console.screens import registry

    page = sections(REFERENCE / "console.md")
    shared = first_cells(page["shared"])
    everywhere = set().union(*(first_cells(text) for text in page.values()))
    missing = [f"{k.shown_key} ({k.label})" for k in registry.KEYS if k.shown_key not in shared]
    missing += [
        f"{key} ({', '.join(sorted(owners))})" for key, owners in console_bindings().items() if key not in everywhere
    ]
    assert not missing, f"not on docs/reference/console.md: {missing}"


# -- --json ----------------------------------------------------------------------------------------

JSON_DEFS = """
[defaults]
timezone = "Europe/London"
driver = "ops"
[routes]
ops = ["{hook}"]
[calendars.closed]
dates = ["2026-01-06", "2026-01-14"]
[[event]]
name = "extract"
run = "true"
schedule = "30 1 * * 2,3"
calendar = "closed"
on_holiday = "next"
runtime = {{ max = "1h" }}
outputs = [ {{ path = "evman.db", min_size = 1 }} ]
on_success = ["report"]
on_failure = {{ retries = 0, prepare = "true" }}
[[event]]
name = "broken"
shell = "exit 3"
[[event]]
name = "report"
run = "true"
requires = "success(extract)"
deadline = "07:00"
"""
VERBS = {
    "list": ["list"],
    "show": ["show", "extract"],
    "history": ["history"],
    "alerts": ["alerts"],
    "next": ["next", "extract", "--after", "2026-01-05T12:00:00+00:00"],  # Tue 6 closed: merged; Wed 14: moved
    "plan": ["plan"],
    "engines": ["engines"],
}
ALSO = {"show": ("list",)}
"""show prints every key of list too; its `runs[]` are history's runs."""
NESTED = {"runs[]": "history"}


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + key
            yield from key_paths(inner, prefix + key + ".")
    elif isinstance(value, list):
        for item in value:
            yield from key_paths(item, prefix[:-1] + "[]." if prefix else "")


@pytest.fixture
def json_outputs(
    engine_factory: Callable[..., Engine], store: Store, clock: FakeClock, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """What every --json verb prints on a database with succeeded and failed runs, an alert
    delivered to a real receiver, and an engine."""
    with HttpReceiver() as receiver:
        engine = engine_factory(JSON_DEFS.format(hook=receiver.url("/hook")))
        for event in ("extract", "broken"):
            other = open_store(store.target)  # as another program writes it: the engine sees the commit
            request_id = other.add_request("trigger", event, requested_by="ana")
            other.close()
            engine.settle()
            assert (store.request(request_id) or {}).get("outcome") == "ok"
        engine.settle()
        assert store.target is not None
        notifier = Notifier(store.target, clock, timeout_s=2.0, throttle_s=0.0)
        try:
            assert [a.outcome for a in notifier.run_once(clock.now())] == ["sent"]
        finally:
            notifier.stop()
    runner = CliRunner()
    outputs = {}
    for verb, args in VERBS.items():
        done = runner.invoke(main, [*args, "--json", "--db", str(store.target)], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        outputs[verb] = json.loads(done.output)
    yield outputs


def test_every_json_key_is_on_its_page(json_outputs: dict[str, Any]) -> None:
    page = sections(REFERENCE / "json.md")
    assert set(VERBS) <= set(page), f"a --json verb has no section: {set(VERBS) - set(page)}"
    missing = []
    for verb, output in json_outputs.items():
        paths = set(key_paths(output))
        assert paths, f"{verb} --json printed no keys: the database should hold something to show"
        documented = first_cells(page[verb]).union(*(first_cells(page[other]) for other in ALSO.get(verb, ())))
        for path in sorted(paths):
            head = next((n for n in NESTED if path.startswith(n + ".")), None)
            if head is not None:
                found = path[len(head) + 1 :] in first_cells(page[NESTED[head]])
            else:
                found = path in documented or f"{path}[]" in documented
            if not found:
                missing.append(f"{verb}: {path}")
    assert not missing, f"not on docs/reference/json.md: {missing}"


def test_the_json_database_holds_every_kind_of_row(json_outputs: dict[str, Any]) -> None:
    """The keys above come from real rows, not empty arrays."""
    assert json_outputs["alerts"][0]["deliveries"], "an alert with a delivery"
    assert any(run["checks"] for run in json_outputs["history"]), "a run with output checks"
    assert json_outputs["list"][0]["last_run"] is not None
    assert json_outputs["engines"] and json_outputs["plan"] and json_outputs["next"]["fires"]
    assert json_outputs["next"]["removed"] and any(f.get("moved_from") for f in json_outputs["next"]["fires"])


# -- tables ----------------------------------------------------------------------------------------


def documented_columns(table: str) -> set[str]:
    page = sections(REFERENCE / "tables.md")
    columns: set[str] = set()
    for text in page.values():
        if f"`{table}`" in text.splitlines()[0]:
            for line in text.splitlines():
                cells = [c.strip() for c in line.split("|")]
                if len(cells) > 3 and cells[1] == f"`{table}`":
                    columns.update(re.findall(r"`([^`]+)`", cells[2]))
            columns |= first_cells(text) - {table}
    return columns


def schema_problems(schema: dict[str, list[str]]) -> list[str]:
    problems = []
    for table, columns in sorted(schema.items()):
        documented = documented_columns(table)
        if not documented:
            problems.append(f"table {table} has no section")
        problems += [f"{table}.{c}" for c in columns if c not in documented]
    return problems


def test_every_sqlite_table_and_column_is_on_its_page(tmp_path: Path) -> None:
    open_store(tmp_path / "new.db", create=True).close()
    with sqlite3.connect(tmp_path / "new.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        schema = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    assert "runs" in schema and "requests" in schema
    problems = schema_problems(schema)
    assert not problems, f"not on docs/reference/tables.md: {problems}"


def test_every_postgresql_table_and_column_is_on_its_page(pg_dsn: str) -> None:
    import psycopg

    open_store(pg_dsn, create=True).close()
    with psycopg.connect(pg_dsn) as db:
        rows = db.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        schema.setdefault(table, []).append(column)
    assert "engines" in schema
    problems = schema_problems(schema)
    assert not problems, f"not on docs/reference/tables.md: {problems}"


# -- exit codes ------------------------------------------------------------------------------------

EXITS = (
    re.compile(r"sys\.exit\((\d+)\)"),
    re.compile(r"SystemExit\((\d+)\)"),
    re.compile(r"_fail\((?:.|\n)*?,\s*(?:code=)?(\d+)\)"),
    re.compile(r"^\s+return (\d+)$", re.M),
    re.compile(r"^[A-Z_]*EXIT: Final = (\d+)", re.M),
)


def exit_codes() -> dict[int, str]:
    """Every literal exit status in the command line's code (and the engine's named ones)."""
    found: dict[int, str] = {0: "success"}
    for path in [*(REPO / "console" / "cli").rglob("*.py"), *(REPO / "engine").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        patterns = EXITS if "cli" in path.parts else EXITS[-1:]
        for pattern in patterns:
            for match in pattern.finditer(text):
                found.setdefault(int(match[1]), f"{path.relative_to(REPO)}")
    return found


def test_every_exit_code_is_in_the_table() -> None:
    documented = {int(c) for c in first_cells((REFERENCE / "exit-codes.md").read_text()) if c.isdigit()}
    codes = exit_codes()
    assert {1, 2, 3} <= set(codes), "the scan finds the statuses it knows of"
    missing = {code: where for code, where in codes.items() if code not in documented}
    assert not missing, f"exit statuses not in docs/reference/exit-codes.md: {missing}"


# -- environment -----------------------------------------------------------------------------------


def evman_names() -> dict[str, str]:
    """Every EVMAN_ name the code spells out (a string or an envvar=), by the file it is in."""
    found: dict[str, str] = {}
    for path in [*(REPO / "engine").rglob("*.py"), *(REPO / "console").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in re.findall(r"\bEVMAN_[A-Z0-9_]*[A-Z0-9]_?", node.value):
                    found.setdefault(name, str(path.relative_to(REPO)))
    return found


def test_every_environment_variable_is_on_its_page() -> None:
    from evman.engine.running.executors import run_env
    from evman.engine.running.inprocess import RunContext

    page = sections(REFERENCE / "environment.md")
    everywhere = set().union(*(first_cells(text) for text in page.values()))
    names = evman_names()
    assert {"EVMAN_DB", "EVMAN_OPERATOR", "EVMAN_LOGS_DIR", "EVMAN_RUN_ID"} <= set(names)
    missing = [f"{n} ({where})" for n, where in sorted(names.items()) if n not in everywhere]
    missing += [f"a command's {n}" for n in run_env("e", 1, 1, None) if n not in first_cells(page["run"])]
    missing += [
        f"a callable's ctx.{f.name}" for f in dataclasses.fields(RunContext) if f.name not in first_cells(page["run"])
    ]
    assert not missing, f"not on docs/reference/environment.md: {missing}"


# -- the checks above can fail ---------------------------------------------------------------------


def test_the_section_reader_sees_a_missing_key(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n## Keys {#event-keys}\n\n| key | what |\n|---|---|\n| `name`, `run` | x |\n\n## Next\n| `x` | y |\n"
    )
    found = sections(page)
    assert first_cells(found["event-keys"]) == {"name", "run"}
    assert undocumented({"name", "run", "shell"}, first_cells(found["event-keys"])) == ["shell"]


def test_key_paths_walk_nested_rows() -> None:
    rows = [{"id": 1, "deliveries": [{"route": "ops"}], "last_run": {"id": 2}, "tags": ["a"]}]
    assert set(key_paths(rows)) == {"id", "deliveries", "deliveries[].route", "last_run", "last_run.id", "tags"}
