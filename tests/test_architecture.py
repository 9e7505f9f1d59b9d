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
ENGINE_FACES = {"engine", "engine.engine"}
"""Who under engine/ may import engine/engine.py: the package face, and the module itself."""
MAX_FILE_LINES = 500
MAX_CLASS_LINES = 300
MAX_MEDIAN_FUNCTION_LINES = 12
OVER_SIZE_FOR_NOW: dict[str, str] = {
}
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
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
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
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges[nxt])))
    return None


def test_engine_never_imports_textual_or_console() -> None:
    bad = [f"{FILES[i.importer].relative_to(ROOT)}:{i.line} imports {i.imported}"
           for i in ALL_IMPORTS if i.importer.split(".")[0] == "engine"
           and i.imported.split(".")[0] in ("textual", "console")]
    assert bad == []


def test_only_the_face_imports_the_engine_module() -> None:
    bad = [f"{FILES[i.importer].relative_to(ROOT)}:{i.line}" for i in ALL_IMPORTS
           if i.importer.split(".")[0] == "engine" and i.importer not in ENGINE_FACES
           and i.imported == "engine.engine"]
    assert bad == [], "modules under engine/ import engine/engine.py; receive a Tick instead"


STORE_MAY_IMPORT = ("engine.store", "engine.clock", "engine.ranks")
"""The store stands on the ground floor: what it imports from the project, besides itself."""


def test_the_store_imports_only_the_ground_floor() -> None:
    bad = [f"{FILES[i.importer].relative_to(ROOT)}:{i.line} imports {i.imported}" for i in ALL_IMPORTS
           if i.importer.startswith("engine.store") and i.imported.split(".")[0] in PACKAGES
           and not i.imported.startswith(STORE_MAY_IMPORT)]
    assert bad == [], "the store must not depend on what stands on it (nor cost `evman list` its imports)"


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
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases and _is_private(node.attr):
            yield f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}"


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def test_no_module_uses_another_modules_private_names() -> None:
    bad = [f"{FILES[name].relative_to(ROOT)} {use}" for name, tree in TREES.items()
           for use in private_uses(name, tree)]
    assert bad == []


def _source_files() -> list[Path]:
    return [p for name, p in FILES.items() if name.split(".")[0] in ("engine", "console")]


def _big_files() -> dict[str, int]:
    return {str(p.relative_to(ROOT)): n for p in _source_files()
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}


def _big_classes() -> dict[str, int]:
    return {f"{p.relative_to(ROOT)}:{node.name}": _length(node) for p in _source_files()
            for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ClassDef)
            and _length(node) > MAX_CLASS_LINES}


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
    lengths = [_length(node) for p in _source_files() for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert statistics.median(lengths) <= MAX_MEDIAN_FUNCTION_LINES


@pytest.mark.parametrize("rule", ["cycle", "engine face", "private name"])
def test_the_rules_catch_a_breach(rule: str) -> None:
    """Each rule fails on code that breaks it (a module of the real tree, rewritten in memory)."""
    if rule == "cycle":
        extra = Import("engine.store.part", "engine.lifecycle", (), 1)  # the store importing upward
        assert find_cycle(project_edges(ALL_IMPORTS + [extra])) is not None
    elif rule == "engine face":
        tree = ast.parse("from engine.engine import Engine\n")
        found = [i for i in imports_of("engine.stages.start", tree) if i.imported == "engine.engine"]
        assert found
    else:
        tree = ast.parse("from engine.stages.flush import _starter\n")
        assert list(private_uses("engine.stages.start", tree))
