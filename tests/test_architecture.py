"""The house rules of HACKING.md, read from the code with `ast`: who may import whom, no import
cycles, no module reaching into another's private names, and the sizes we keep to."""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "console", "bench")
"""The folders of the repository whose modules the rules read; engine/ and console/ are installed
as evman.engine and evman.console, so their modules are named with that prefix."""
INSTALLED = ("engine", "console")
ALSO_SCANNED = ("tests", "examples")
"""Read only for bare imports: the tests and examples must import evman.* too."""
ENGINE_FACES = {"evman.engine", "evman.engine.engine"}
"""Who under engine/ may import engine/engine.py: the package face, and the module itself."""
MAX_FILE_LINES = 500
MAX_CLASS_LINES = 300
MAX_MEDIAN_FUNCTION_LINES = 12
OVER_SIZE_FOR_NOW: dict[str, str] = {}
"""Known breaches, each to be split this round; an entry that is no longer over the size fails
test_over_size_list_is_current, so the list can only shrink."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] in INSTALLED:
        parts.insert(0, "evman")
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    files["evman"] = ROOT / "evman" / "__init__.py"
    return files


FILES = project_files()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in FILES.items()}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    is_package = FILES[importer].name == "__init__.py"
    base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, tree: ast.AST) -> Iterator[Import]:
    """Every import in the module, at any depth (a function's lazy import is a dependency too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield Import(name, sub if sub in FILES else target, (alias.name,), node.lineno)


ALL_IMPORTS = [imp for name, tree in TREES.items() for imp in imports_of(name, tree)]


def project_edges(imports: list[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in FILES}
    for imp in imports:
        target = imp.imported
        while target and target not in FILES:
            target = target.rpartition(".")[0]
        if target and target != imp.importer:
            edges[imp.importer].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in sorted(edges):
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(sorted(edges[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges[nxt])))
    return None


def _is_engine(module: str) -> bool:
    return module == "evman.engine" or module.startswith("evman.engine.")


def textual_or_console_in_engine(imports: list[Import]) -> list[str]:
    return [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in imports
        if _is_engine(i.importer) and (i.imported.split(".")[0] == "textual" or i.imported.startswith("evman.console"))
    ]


def test_engine_never_imports_textual_or_console() -> None:
    assert textual_or_console_in_engine(ALL_IMPORTS) == []


def engine_module_imports(imports: list[Import]) -> list[str]:
    return [
        f"{i.importer}:{i.line}"
        for i in imports
        if _is_engine(i.importer) and i.importer not in ENGINE_FACES and i.imported == "evman.engine.engine"
    ]


def test_only_the_face_imports_the_engine_module() -> None:
    assert engine_module_imports(ALL_IMPORTS) == [], (
        "modules under engine/ import engine/engine.py; receive a Tick instead"
    )


BARE = ("engine", "console")
"""The folders' own names: installed, they are evman.engine and evman.console. In an editable
install the bare names still resolve (the checkout is on sys.path), so they could creep back and
load a second copy of every module (two RunState enums that never compare equal)."""


def bare_imports(name: str, tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found = [node.module]
        elif isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        else:
            continue
        for module in found:
            if module.split(".")[0] in BARE:
                yield f"{name}:{node.lineno} imports {module} (write evman.{module})"


def _scanned_trees() -> dict[str, ast.AST]:
    extra = {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(), str(path))
        for folder in ALSO_SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    return {**TREES, **extra}


def test_no_bare_engine_or_console_import() -> None:
    bad = [use for name, tree in _scanned_trees().items() for use in bare_imports(name, tree)]
    assert bad == []


LAYERS: tuple[tuple[str, ...], ...] = (
    ("evman.engine.vocabulary",),
    ("evman", "evman.engine.model", "evman.engine.clock", "evman.engine.ranks", "evman.engine.quoting"),
    ("evman.engine.timing", "evman.engine.store"),
    ("evman.engine.conditions", "evman.engine.crontab", "evman.engine.coordination"),
    ("evman.engine.definitions",),
    ("evman.engine.paging", "evman.engine.running"),
    ("evman.engine.foresight", "evman.engine.fleet", "evman.engine.retention", "evman.engine.watch"),
    ("evman.engine.tick",),
    ("evman.engine.verbs",),
    ("evman.engine.stages",),
    ("evman.engine.engine", "evman.engine"),
    ("evman.console.views", "evman.console.mailbox"),
    ("evman.console.widgets",),
    ("evman.console.screens",),
    ("evman.console.app",),
    ("evman.console.cli", "evman.console"),
    ("evman.console.start",),
)
"""The floors of HACKING.md, from the ground up: a room imports only rooms on lower floors, and
itself. A room is a sub-package (every module in it) or a module at a package's top."""


def room_of(module: str) -> str | None:
    """The room a project module stands in (the longest LAYERS name that holds it), or None."""
    best = None
    for floor in LAYERS:
        for room in floor:
            if (module == room or module.startswith(room + ".")) and len(room) > len(best or ""):
                best = room
    return best


FLOOR_OF = {room: n for n, floor in enumerate(LAYERS) for room in floor}


def floor_breaches(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        mine, theirs = room_of(imp.importer), room_of(imp.imported)
        if mine is None or theirs is None or mine == theirs:
            continue
        if FLOOR_OF[theirs] >= FLOOR_OF[mine]:
            bad.append(f"{imp.importer}:{imp.line} ({mine}) imports {imp.imported} ({theirs})")
    return bad


def test_every_module_stands_in_a_room() -> None:
    homeless = [name for name in FILES if name.startswith("evman") and room_of(name) is None]
    assert homeless == [], "add the new room to LAYERS (and HACKING.md)"


def test_rooms_import_only_lower_floors() -> None:
    assert floor_breaches(ALL_IMPORTS) == []


STORE_MAY_IMPORT = (
    "evman.engine.store",
    "evman.engine.model",
    "evman.engine.vocabulary",
    "evman.engine.clock",
    "evman.engine.ranks",
)
"""The store stands on the ground floor: what it imports from the project, besides itself."""


def store_breaches(imports: list[Import]) -> list[str]:
    return [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in imports
        if i.importer.startswith("evman.engine.store")
        and i.imported.startswith("evman")
        and not i.imported.startswith(STORE_MAY_IMPORT)
    ]


def test_the_store_imports_only_the_ground_floor() -> None:
    assert store_breaches(ALL_IMPORTS) == [], (
        "the store must not depend on what stands on it (nor cost `evman list` its imports)"
    )


def test_no_import_cycles() -> None:
    cycle = find_cycle(project_edges(ALL_IMPORTS))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def private_uses(name: str, tree: ast.AST) -> Iterator[str]:
    """`from m import _x`, and `m._x` where m is a project module imported by this one."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in FILES:
                    aliases[alias.asname or alias.name] = full
                elif target in FILES and _is_private(alias.name) and target != name:
                    yield f"line {node.lineno}: from {target} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in FILES and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ):
            yield f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}"


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def test_no_module_uses_another_modules_private_names() -> None:
    bad = [f"{FILES[name].relative_to(ROOT)} {use}" for name, tree in TREES.items() for use in private_uses(name, tree)]
    assert bad == []


def _source_files() -> list[Path]:
    return [p for name, p in FILES.items() if name.startswith(("evman.engine", "evman.console"))]


def _big_files() -> dict[str, int]:
    return {
        str(p.relative_to(ROOT)): n for p in _source_files() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }


def _big_classes() -> dict[str, int]:
    return {
        f"{p.relative_to(ROOT)}:{node.name}": _length(node)
        for p in _source_files()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.ClassDef) and _length(node) > MAX_CLASS_LINES
    }


def test_no_source_file_is_over_the_size_we_keep() -> None:
    big = {k: v for k, v in _big_files().items() if k not in OVER_SIZE_FOR_NOW}
    assert big == {}, f"files over {MAX_FILE_LINES} lines hold two ideas: split them"


def _length(node: ast.AST) -> int:
    return int(getattr(node, "end_lineno", 0)) - int(getattr(node, "lineno", 0)) + 1


def test_no_class_is_over_the_size_we_keep() -> None:
    big = {k: v for k, v in _big_classes().items() if k not in OVER_SIZE_FOR_NOW}
    assert big == {}, f"classes over {MAX_CLASS_LINES} lines: split them"


def test_over_size_list_is_current() -> None:
    still = set(_big_files()) | set(_big_classes())
    assert sorted(set(OVER_SIZE_FOR_NOW) - still) == [], "split already: remove from OVER_SIZE_FOR_NOW"


def test_functions_are_short() -> None:
    lengths = [
        _length(node)
        for p in _source_files()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    assert statistics.median(lengths) <= MAX_MEDIAN_FUNCTION_LINES


BREACHES = {
    "cycle": "evman.engine.store.part: import evman.engine.tick.lifecycle",
    "engine face": "evman.engine.stages.start: from evman.engine.engine import Engine",
    "private name": "evman.engine.stages.start: from evman.engine.stages.flush import _starter",
    "textual in engine": "evman.engine.tick.lifecycle: from textual.app import App",
    "console in engine": "evman.engine.tick.lifecycle: from evman.console.mailbox import send_request",
    "store upward": "evman.engine.store.runs: from evman.engine.timing.schedules import parse_schedule",
    "floor": "evman.engine.timing.windows: from evman.engine.tick.active import ActiveRun",
    "bare import": "evman.engine.stages.start: from engine.model import RunState",
    "bare module import": "evman.engine.stages.start: import console.mailbox",
}
"""One planted breach per rule, written as each module would write it (with the evman prefix:
under a wrong prefix a rule would pass without checking anything)."""


def _planted(breach: str) -> tuple[str, ast.AST, list[Import]]:
    importer, _, code = breach.partition(": ")
    assert importer in FILES, f"the planted breach names a module that does not exist: {importer}"
    tree = ast.parse(code + "\n")
    return importer, tree, list(imports_of(importer, tree))


@pytest.mark.parametrize("rule", sorted(BREACHES))
def test_the_rules_catch_a_breach(rule: str) -> None:
    """Each rule fails on code that breaks it: a real module, given one more import in memory."""
    importer, tree, extra = _planted(BREACHES[rule])
    caught = {
        "cycle": lambda: find_cycle(project_edges(ALL_IMPORTS + extra)) is not None,
        "engine face": lambda: bool(engine_module_imports(extra)),
        "private name": lambda: bool(list(private_uses(importer, tree))),
        "textual in engine": lambda: bool(textual_or_console_in_engine(extra)),
        "console in engine": lambda: bool(textual_or_console_in_engine(extra)),
        "store upward": lambda: bool(store_breaches(extra)),
        "floor": lambda: bool(floor_breaches(extra)),
        "bare import": lambda: bool(list(bare_imports(importer, tree))),
        "bare module import": lambda: bool(list(bare_imports(importer, tree))),
    }[rule]
    assert caught()
    assert all(target in FILES or not target.startswith("evman") for target in (i.imported for i in extra)), (
        "the planted import names a module that does not exist"
    )


def test_the_real_tree_passes_each_rule_it_is_planted_in() -> None:
    """The planted modules are clean without the plant, so each catch above is the plant's."""
    for breach in BREACHES.values():
        importer = breach.partition(": ")[0]
        own = [i for i in ALL_IMPORTS if i.importer == importer]
        assert not floor_breaches(own) and not store_breaches(own) and not engine_module_imports(own)
