"""The `requires` tokens, and errors that say where in the text they are."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from evman.engine.conditions.tree import GROUP_PREFIX, WORD, ConditionError
from evman.engine.quoting import quoted

NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_OP: Final = re.compile(r"==|!=|<=|>=|<|>")
_GROUP: Final = re.compile(re.escape(GROUP_PREFIX) + r"[A-Za-z0-9_.\-]*")
_PUNCTUATION: Final[Mapping[str, Literal["(", ")", ","]]] = {"(": "(", ")": ")", ",": ","}
_CHAR_HINTS: Final[Mapping[str, str]] = {"!": "use 'not'", "&": "use 'and'", "|": "use 'or'", "=": "compare with '=='"}
_LANGUAGE: Final = (
    "conditions use success(), failure(), done(), exitcode(), running(), notrunning(), "
    "exists(), 'and', 'or', 'not' and parentheses"
)


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "string", "(", ")", ",", "op", "end"]
    text: str
    pos: int
    """0-based offset into the source."""


def where(text: str, pos: int) -> tuple[str, int]:
    line_start = text.rfind("\n", 0, pos) + 1
    column = pos - line_start + 1
    if "\n" not in text:
        return f"column {column}", column
    return f"line {text.count(chr(10), 0, pos) + 1}, column {column}", column


def located_error(text: str, what: str, pos: int, hint: str | None = None, found: str | None = None) -> ConditionError:
    place, column = where(text, pos)
    message = f"requires: {what} at {place}" + (f", found {found}" if found else "") + (f"; {hint}" if hint else "")
    return ConditionError(message, column)


def tokenize(text: str) -> Iterator[Token]:
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            yield Token("end", "", pos)
            return
        char = text[pos]
        if char in "(),":
            yield Token(_PUNCTUATION[char], char, pos)
            pos += 1
        elif char in "\"'":
            end = text.find(char, pos + 1)
            if end < 0:
                raise located_error(text, "unterminated string", pos, f"close it with {char}")
            yield Token("string", text[pos + 1 : end], pos)
            pos = end + 1
        elif match := _OP.match(text, pos) or _GROUP.match(text, pos) or WORD.match(text, pos):
            yield Token("op" if match.re is _OP else "word", match.group(), pos)
            pos = match.end()
        else:
            raise located_error(text, f"unexpected character {quoted(char)}", pos, _CHAR_HINTS.get(char, _LANGUAGE))


def describe_token(token: Token) -> str:
    if token.kind == "end":
        return "the end"
    if token.kind == "string":
        return f"the string {quoted(token.text)}"
    if token.kind == "word" and NUMBER.fullmatch(token.text):
        return f"the number {token.text}"
    return quoted(token.text)
