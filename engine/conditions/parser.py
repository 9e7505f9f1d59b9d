"""Parsing `requires`: recursive descent over the tokens into a Condition."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Final, Literal

from evman.engine.conditions.tokens import NUMBER, Token, describe_token, located_error, tokenize, where
from evman.engine.conditions.tree import (
    GROUP_PREFIX,
    AllOf,
    AnyOf,
    Condition,
    ConditionError,
    Exists,
    ExitCode,
    GroupOutcome,
    GroupRunning,
    Lookback,
    Node,
    Not,
    Outcome,
    Running,
)
from evman.engine.quoting import clipped, quoted
from evman.engine.timing.durations import DurationError, parse_duration

FUNCTIONS: Final = ("success", "failure", "done", "exitcode", "running", "notrunning", "exists")
_LOOKBACK_FUNCTIONS: Final = frozenset({"success", "failure", "done", "exitcode"})
_EVENT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_INTEGER: Final = re.compile(r"-?[0-9]+")
_MAX_DEPTH: Final = 50
_EXAMPLE: Final = "write e.g. success(fetch-feeds)"


def parse_condition(text: str) -> Condition:
    """Parse a `requires` expression; raise ConditionError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ConditionError(f'requires: expected a string such as "success(fetch-feeds)", got {quoted(text)}')
    parser = _Parser(text)
    tree = parser.parse()
    return Condition(text, frozenset(parser.events), tuple(parser.paths), tree, frozenset(parser.groups))


class _Parser:
    """Recursive descent over: or_expr := and_expr ('or' and_expr)*; and_expr := not_expr ('and' ...)*;
    not_expr := 'not'* atom; atom := '(' or_expr ')' | call."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stream = tokenize(text)
        self.token = next(self.stream)
        self.depth = 0
        self.events: set[str] = set()
        self.groups: set[str] = set()
        self.paths: dict[str, None] = {}

    def advance(self) -> Token:
        taken, self.token = self.token, next(self.stream)
        return taken

    def at(self, *kinds: str) -> bool:
        """Whether the current token is of one of `kinds` (a method, so mypy re-reads it after advance())."""
        return self.token.kind in kinds

    def is_word(self, word: str) -> bool:
        return self.at("word") and self.token.text == word

    def fail(self, what: str, token: Token, hint: str | None = None, found: bool = False) -> ConditionError:
        """The error for `token`; with found=True the message also says what `token` is."""
        return located_error(self.text, what, token.pos, hint, describe_token(token) if found else None)

    def parse(self) -> Node:
        if self.at("end"):
            raise ConditionError(f"requires: the expression is empty; {_EXAMPLE}")
        tree = self.or_expr()
        if self.at(")"):
            raise self.fail("unexpected ')'", self.token, "no '(' is open")
        if not self.at("end"):
            raise self.fail(f"unexpected {describe_token(self.token)}", self.token, self._keyword_hint())
        return tree

    def _keyword_hint(self) -> str:
        if self.token.text.startswith("."):
            return "attribute access is not allowed; expected 'and', 'or' or the end"
        if self.token.text.lower() in ("and", "or", "not"):
            return "expected 'and', 'or' or the end; keywords are lowercase"
        return "expected 'and', 'or' or the end"

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def not_expr(self) -> Node:
        negations = 0
        while self.is_word("not"):
            self.advance()
            negations += 1
        node = self.atom()
        return Not(node) if negations % 2 else node

    def atom(self) -> Node:
        if self.at("("):
            return self.group()
        if self.at("word") and self.token.text not in ("and", "or"):
            return self.call()
        raise self.fail("expected a condition", self.token, _EXAMPLE, found=True)

    def group(self) -> Node:
        opening = self.advance()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(f"parentheses nest more than {_MAX_DEPTH} deep", opening, "simplify the expression")
        node = self.or_expr()
        if not self.at(")"):
            opened = where(self.text, opening.pos)[0]
            if self.at("end"):
                raise self.fail("missing ')'", self.token, f"the '(' at {opened} is not closed")
            raise self.fail("expected 'and', 'or' or ')'", self.token, f"the '(' at {opened} is still open", found=True)
        self.advance()
        self.depth -= 1
        return node

    # -------------------------------------------------------- calls

    def call(self) -> Node:
        name = self.advance()
        self.check_function(name)
        if not self.at("("):
            raise self.fail(f"expected '(' after {quoted(name.text)}", self.token, found=True)
        opening = self.advance()
        args = self.arguments(name.text, opening)
        lookback = self.lookback(args[1]) if len(args) > 1 else None
        if name.text == "exitcode":
            return self.comparison(args[0].text, lookback)
        if self.at("op"):
            raise self.fail(
                f"unexpected {quoted(self.token.text)}", self.token, "only exitcode() is compared with a number"
            )
        if name.text == "exists":
            self.paths.setdefault(args[0].text, None)
            return Exists(args[0].text)
        if args[0].text.startswith(GROUP_PREFIX):
            return self.group_call(name.text, args[0].text.removeprefix(GROUP_PREFIX), lookback)
        self.events.add(args[0].text)
        if name.text in ("running", "notrunning"):
            return Running(args[0].text, name.text == "running")
        test: Literal["success", "failure", "done"] = (
            "success" if name.text == "success" else "failure" if name.text == "failure" else "done"
        )
        return Outcome(test, args[0].text, lookback)

    def group_call(self, function: str, group: str, lookback: Lookback | None) -> Node:
        self.groups.add(group)
        if function in ("running", "notrunning"):
            return GroupRunning(group, function == "running")
        test: Literal["success", "failure", "done"] = (
            "success" if function == "success" else "failure" if function == "failure" else "done"
        )
        return GroupOutcome(test, group, lookback)

    def check_function(self, name: Token) -> None:
        if name.text in FUNCTIONS:
            return
        if NUMBER.fullmatch(name.text):
            raise self.fail("expected a condition", name, _EXAMPLE, found=True)
        expected = "expected one of " + ", ".join(FUNCTIONS)
        if "." in name.text:
            raise self.fail(f"attribute access is not allowed ({quoted(name.text)})", name, expected)
        if not self.at("("):
            raise self.fail(
                "expected a condition",
                name,
                found=True,
                hint=f"to test an event write e.g. success({clipped(name.text)}) or running({clipped(name.text)})",
            )
        close = difflib.get_close_matches(name.text.lower(), FUNCTIONS, n=1)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        raise self.fail(f"unknown function {quoted(name.text)}", name, expected + suggestion)

    def arguments(self, function: str, opening: Token) -> list[Token]:
        args: list[Token] = []
        while True:
            if self.at("word", "string"):
                self.check_argument(function, len(args), self.token)
                args.append(self.advance())
            elif self.at(")") and not args:
                raise self.fail(f"{function}() needs {_ARGUMENT[function]}", self.token, _ARGUMENT_EXAMPLE[function])
            else:
                raise self.fail(f"expected an argument to {function}()", self.token, found=True)
            if self.at(")"):
                self.advance()
                return args
            if self.at(","):
                self.advance()
                continue
            self.fail_argument_end(function, opening)

    def fail_argument_end(self, function: str, opening: Token) -> None:
        opened = where(self.text, opening.pos)[0]
        if self.at("end"):
            raise self.fail("missing ')'", self.token, f"'{function}(' at {opened} is not closed")
        if self.at("("):
            raise self.fail(
                f"calls cannot be nested ('(' inside '{function}(')",
                self.token,
                "combine conditions with 'and', 'or' and 'not'",
            )
        raise self.fail("expected ',' or ')'", self.token, found=True)

    def check_argument(self, function: str, index: int, token: Token) -> None:
        limit = 2 if function in _LOOKBACK_FUNCTIONS else 1
        if index >= limit:
            raise self.fail(f"too many arguments to {function}()", token, f"{function}() takes {_ARITY[function]}")
        if index == 1:
            return
        if function == "exists":
            if token.kind != "string" or not token.text:
                raise self.fail("exists() takes a quoted, non-empty path", token, _ARGUMENT_EXAMPLE["exists"])
        elif token.kind == "word" and token.text.startswith(GROUP_PREFIX):
            self.check_group(function, token)
        elif not _EVENT_NAME.fullmatch(token.text):
            raise self.fail(
                f"{describe_token(token)} is not an event name",
                token,
                "names use lowercase letters, digits, '.', '_' and '-', and start with a letter or digit",
            )

    def check_group(self, function: str, token: Token) -> None:
        if function == "exitcode":
            raise self.fail(
                "exitcode() takes one event, not a group", token, "test a group with success(), failure() or done()"
            )
        if not _EVENT_NAME.fullmatch(token.text.removeprefix(GROUP_PREFIX)):
            raise self.fail(
                f"{describe_token(token)} does not name a group",
                token,
                "write group:NAME, a name of lowercase letters, digits, '.', '_' and '-'",
            )

    def lookback(self, token: Token) -> Lookback:
        try:
            seconds = parse_duration(token.text)
        except DurationError:
            raise self.fail(
                f"bad lookback {quoted(token.text)}", token, 'expected a duration such as "12h", "30m", "1d" or "2h30m"'
            ) from None
        if seconds <= 0:
            raise self.fail(f"lookback {quoted(token.text)} is zero", token, "use a duration longer than zero")
        return Lookback(seconds, token.text)

    def comparison(self, event: str, lookback: Lookback | None) -> ExitCode:
        self.events.add(event)
        if not self.at("op"):
            raise self.fail(
                f"exitcode({event}) must be compared with a number", self.token, f"e.g. exitcode({event}) == 0"
            )
        op = self.advance()
        number = self.token
        if number.kind != "word" or not _INTEGER.fullmatch(number.text):
            raise self.fail(f"expected a whole number after '{op.text}'", number, found=True)
        self.advance()
        return ExitCode(event, op.text, int(number.text), lookback)


_ARGUMENT: Final[Mapping[str, str]] = {**{name: "an event name" for name in FUNCTIONS}, "exists": "a quoted path"}
_ARGUMENT_EXAMPLE: Final[Mapping[str, str]] = {
    **{name: f"e.g. {name}(fetch-feeds)" for name in FUNCTIONS},
    "exitcode": "e.g. exitcode(fetch-feeds) == 0",
    "exists": 'e.g. exists("feeds/today.json")',
}
_ARITY: Final[Mapping[str, str]] = {
    **{name: 'an event name and an optional lookback such as "12h"' for name in _LOOKBACK_FUNCTIONS},
    "running": "exactly one event name",
    "notrunning": "exactly one event name",
    "exists": "exactly one quoted path",
}
