"""Where each table and key of a TOML text starts: tomllib keeps no positions, so problems
find their line here. Reads only text tomllib has already accepted."""

from __future__ import annotations

import re
import tomllib
from typing import Final, TypeAlias

KeyPath: TypeAlias = tuple[str | int, ...]
"""("event", 2, "outputs", 0, "path"): keys, and indexes into arrays (0-based)."""

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PART: Final = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_SCALAR_END: Final = frozenset(",]}\n#")


def key_path(key: str) -> KeyPath:
    """A key as problems write it ("outputs[0].path", "env.HOME") as a KeyPath."""
    return tuple(int(index) if index else name for index, name in _KEY_PART.findall(key))


class Positions:
    """Line numbers (1-based) of the tables, keys and array items of one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        _Scanner(text, self._lines).run()

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, else of its nearest ancestor there is (a missing key is
        reported at its table); None when not even the first key is in the text."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Scanner:
    """One pass over the text: headers, key = value lines, and inside values the items of
    arrays and the keys of inline tables."""

    def __init__(self, text: str, lines: dict[KeyPath, int]) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines = lines
        self.arrays: dict[KeyPath, int] = {}
        """Each [[array of tables]] path and the index of its latest table."""

    def run(self) -> None:
        table: KeyPath = ()
        while self.skip_blank():
            start = self.pos
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)
            self.skip_spaces()
            if self.peek() == "#":
                self.skip_comment()
            if self.pos == start:  # never stall, whatever the text
                self.advance()

    # -------------------------------------------------------- characters

    def peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.peek() == "\n":
                self.line += 1
            self.pos += 1

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t", "\r") and self.peek():
            self.pos += 1

    def skip_comment(self) -> None:
        while self.peek() not in ("\n", ""):
            self.pos += 1

    def skip_blank(self) -> bool:
        """Past blanks, newlines and comments; False at the end of the text."""
        while True:
            self.skip_spaces()
            if self.peek() == "#":
                self.skip_comment()
            elif self.peek() == "\n":
                self.advance()
            else:
                return self.pos < len(self.text)

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.peek() == char:
            self.advance()

    # -------------------------------------------------------- tables and keys

    def note(self, path: KeyPath, line: int) -> None:
        """`path` starts at `line`, and so do the tables it makes by naming them ([a.b] makes a)."""
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def header(self) -> KeyPath:
        line = self.line
        self.advance()
        is_array = self.peek() == "["
        if is_array:
            self.advance()
        path = self.resolve(self.key())
        self.expect("]")
        if is_array:
            self.expect("]")
            self.note(path, line)
            index = self.arrays.get(path, -1) + 1
            self.arrays[path] = index
            path = (*path, index)
        self.note(path, line)
        return path

    def resolve(self, keys: list[str]) -> KeyPath:
        """[event.window] after the third [[event]] is ("event", 2, "window")."""
        path: KeyPath = ()
        for number, key in enumerate(keys, start=1):
            path = (*path, key)
            if number < len(keys) and path in self.arrays:
                path = (*path, self.arrays[path])
        return path

    def key_value(self, table: KeyPath) -> None:
        line = self.line
        path = (*table, *self.key())
        self.note(path, line)
        self.expect("=")
        self.value(path)

    def key(self) -> list[str]:
        """A dotted key: bare and quoted parts."""
        parts: list[str] = []
        while True:
            self.skip_spaces()
            parts.append(self.key_part())
            self.skip_spaces()
            if self.peek() != ".":
                return parts
            self.advance()

    def key_part(self) -> str:
        if self.peek() in ("'", '"'):
            start = self.pos
            self.string()
            raw = self.text[start : self.pos]
            return str(tomllib.loads(f"k = {raw}")["k"])
        match = _BARE_KEY.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    # -------------------------------------------------------- values

    def value(self, path: KeyPath) -> None:
        self.skip_spaces()
        char = self.peek()
        if char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        elif char in ("'", '"'):
            self.string()
        else:
            while self.peek() and self.peek() not in _SCALAR_END:
                self.pos += 1

    def array(self, path: KeyPath) -> None:
        self.advance()
        index = 0
        while self.skip_blank():
            if self.peek() == "]":
                self.advance()
                return
            start = self.pos
            self.note((*path, index), self.line)
            self.value((*path, index))
            self.skip_blank()
            if self.peek() == ",":
                self.advance()
                index += 1
            elif self.pos == start:
                self.advance()

    def inline_table(self, path: KeyPath) -> None:
        self.advance()
        while self.skip_blank():
            if self.peek() == "}":
                self.advance()
                return
            start, line = self.pos, self.line
            key = (*path, *self.key())
            self.note(key, line)
            self.expect("=")
            self.value(key)
            self.skip_blank()
            if self.peek() == ",":
                self.advance()
            elif self.pos == start:
                self.advance()

    def string(self) -> None:
        quote = self.peek()
        is_multiline = self.text.startswith(quote * 3, self.pos)
        self.advance(3 if is_multiline else 1)
        while self.peek():
            if quote == '"' and self.peek() == "\\":
                self.advance(2)
            elif is_multiline and self.text.startswith(quote * 3, self.pos):
                self.advance(3)
                while self.peek() == quote:  # up to two quotes may end the content
                    self.advance()
                return
            elif not is_multiline and self.peek() == quote:
                self.advance()
                return
            else:
                self.advance()
