"""`d`: the selected event's dependency tree, what it needs and what follows it, live."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from evman.console.screens.base import EvmanScreen, back_keys
from evman.console.views import screen_rows
from evman.console.widgets.key_bar import KeyBar
from evman.console.widgets.status_bar import StatusBar
from evman.console.widgets.tones import styled
from evman.engine.store import Store

REPEAT_MARK = " ◆ shown above"
RELATION_TEXT = {"requires it": "waits for it"}


class EventTree(Tree[str]):
    """Textual's Tree, with j/k beside the arrows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class TreeLoaded(Message):
    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self.data = data


class TreeScreen(EvmanScreen):
    """Upstream (what `requires` names, recursively) and downstream (on_success, on_failure
    triggers, events that require it). A diamond's second path shows the event once more,
    marked, without its subtree."""

    BINDINGS: ClassVar[list[BindingType]] = back_keys()

    def __init__(self, event: str) -> None:
        super().__init__()
        self.event = event
        self.tree_data: dict[str, Any] | None = None
        self._shape: Any = None
        self._placed: dict[str, list[tuple[TreeNode[str], dict[str, Any]]]] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(Text(f"Dependencies of {self.event}", style="bold"), id="title")
        tree = EventTree(self.event, data=self.event, id="tree")
        tree.auto_expand = False
        yield tree
        yield Static("", id="note")
        yield KeyBar()

    def on_mount(self) -> None:
        self.services.show_status()
        first = self.take_preloaded()
        if isinstance(first, TreeLoaded):
            self.on_tree_loaded(first)
        else:
            self.load()
        self.set_interval(1.0, self.services.show_status)

    @property
    def tree_widget(self) -> Tree[str]:
        return self.query_one("#tree", Tree)

    def read_shown(self, store: Store) -> TreeLoaded:
        return TreeLoaded(screen_rows.dependency_tree(store, self.event))

    @work(thread=True, exclusive=True, group="tree")
    def load(self) -> None:
        with self.services.reading() as store:
            loaded = self.read_shown(store)
        if not get_current_worker().is_cancelled:
            self.post_message(loaded)

    def changed(self, events: set[str], *, definitions: bool = False) -> None:
        if (
            self.tree_data is None
            or definitions
            or events & (set(self.tree_data["rows"]) | {self.event})
            or any(e.startswith(("run:", "alert:", "runs-after:")) for e in events)
        ):
            self.load()

    def on_tree_loaded(self, message: TreeLoaded) -> None:
        self.tree_data = message.data
        shape = _shape(message.data)
        if shape != self._shape:
            self._shape = shape
            self._draw(message.data)
        else:
            self._relabel(message.data)
        self._show_note()

    # -- drawing ---------------------------------------------------------------------------

    def _draw(self, data: dict[str, Any]) -> None:
        tree = self.tree_widget
        tree.clear()
        self._placed = {}
        root = tree.root
        self._remember(root, {"name": self.event, "relation": None, "repeat": False})
        root.expand()
        needs = data["requires"] or "nothing (no requires)"
        up = root.add(Text(f"needs: {needs}", style=self.services.palette.get("muted", "")), expand=True)
        self._add(up, data["upstream"])
        follows = root.add(Text("then", style=self.services.palette.get("muted", "")), expand=True)
        self._add(follows, data["downstream"])
        if not data["downstream"]:
            follows.add_leaf(Text("nothing follows it", style=self.services.palette.get("muted", "")))
        if data["truncated"]:
            root.add_leaf(Text("… more (tree cut at 400 nodes)"))
        self._relabel(data)
        tree.move_cursor(root)

    def _add(self, parent: TreeNode[str], nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if node["children"]:
                child = parent.add("", data=node["name"], expand=True)
                self._add(child, node["children"])
            else:
                child = parent.add_leaf("", data=node["name"])
            self._remember(child, node)

    def _remember(self, tree_node: TreeNode[str], node: dict[str, Any]) -> None:
        self._placed.setdefault(node["name"], []).append((tree_node, node))

    def _relabel(self, data: dict[str, Any]) -> None:
        for name, placed in self._placed.items():
            text, tone = screen_rows.tree_label(data["rows"].get(name), name)
            for tree_node, node in placed:
                label = Text()
                if node.get("relation") and node["relation"] != "requires":  # its branch says "needs"
                    relation = ", ".join(RELATION_TEXT.get(r, r) for r in node["relation"].split(", "))
                    label.append(f"{relation}: ", style=self.services.palette.get("muted", ""))
                label.append_text(styled((text, tone), self.services.palette))
                if node.get("repeat"):
                    label.append(REPEAT_MARK, style=self.services.palette.get("warn", ""))
                tree_node.set_label(label)

    def restyle(self) -> None:
        if self.tree_data is not None:
            self._draw(self.tree_data)

    # -- selection -------------------------------------------------------------------------------

    def selected_event(self) -> str | None:
        node = self.tree_widget.cursor_node
        return node.data if node is not None and node.data else self.event

    @on(Tree.NodeSelected)
    def _chosen(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data:
            self.open("details")

    @on(Tree.NodeHighlighted)
    def _highlighted(self, _event: Tree.NodeHighlighted[str]) -> None:
        self._show_note()

    def _show_note(self) -> None:
        name = self.selected_event()
        row = (self.tree_data or {}).get("rows", {}).get(name) if name else None
        self.query_one("#note", Static).update(
            Text(screen_rows.event_note(row) if row else "", no_wrap=True, overflow="ellipsis")
        )


def _shape(data: dict[str, Any]) -> Any:
    def walk(nodes: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple((n["name"], n["relation"], n["repeat"], walk(n["children"])) for n in nodes)

    return data["requires"], walk(data["upstream"]), walk(data["downstream"]), data["truncated"]
