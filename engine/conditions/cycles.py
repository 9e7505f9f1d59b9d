"""Cycles in a dependency graph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as ["a", "b", "a"] (a self-loop is ["a", "a"]), or None.

    Nodes that appear only as targets have no edges. Iterative depth-first search, so a
    100,000-long chain does not meet the recursion limit.
    """
    finished: set[str] = set()
    for root in graph:
        if root in finished:
            continue
        path, on_path = [root], {root: 0}
        stack: list[Iterator[str]] = [iter(graph.get(root, ()))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                done = path.pop()
                del on_path[done]
                finished.add(done)
            elif target in on_path:
                return path[on_path[target] :] + [target]
            elif target not in finished:
                on_path[target] = len(path)
                path.append(target)
                stack.append(iter(graph.get(target, ())))
    return None
