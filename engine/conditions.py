"""The `requires` language: parse an expression once, evaluate it against run state, find cycles."""
from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, Protocol, TypeAlias

from engine.durations import DurationError, format_duration, parse_duration
from engine.model import FAILED_STATES, RunState


class ConditionError(ValueError):
    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        """1-based column (within its line) of the problem; None when it has no one place."""


# ---------------------------------------------------------------- the tree

@dataclass(frozen=True)
class Lookback:
    seconds: float
    text: str
    """As written, e.g. "12h"; reasons quote it back."""


@dataclass(frozen=True)
class Outcome:
    """success(E) / failure(E) / done(E), optionally within a lookback."""
    test: Literal["success", "failure", "done"]
    event: str
    lookback: Lookback | None = None


@dataclass(frozen=True)
class ExitCode:
    event: str
    op: str
    number: int
    lookback: Lookback | None = None


@dataclass(frozen=True)
class Running:
    event: str
    wanted: bool
    """True for running(E), False for notrunning(E)."""


@dataclass(frozen=True)
class Exists:
    path: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


Node: TypeAlias = Outcome | ExitCode | Running | Exists | Not | AllOf | AnyOf


@dataclass(frozen=True)
class Condition:
    source: str
    events: frozenset[str]
    """Every event name the expression mentions."""
    paths: tuple[str, ...]
    """Every exists() path, in order of first appearance."""
    tree: Node = field(repr=False)

    def __str__(self) -> str:
        return render(self.tree)


# ---------------------------------------------------------------- tokens

FUNCTIONS: Final = ("success", "failure", "done", "exitcode", "running", "notrunning", "exists")
_LOOKBACK_FUNCTIONS: Final = frozenset({"success", "failure", "done", "exitcode"})
_EVENT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_INTEGER: Final = re.compile(r"-?[0-9]+")
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_WORD: Final = re.compile(r"[A-Za-z0-9_.\-]+")
_OP: Final = re.compile(r"==|!=|<=|>=|<|>")
_MAX_DEPTH: Final = 50
_PUNCTUATION: Final[Mapping[str, Literal["(", ")", ","]]] = {"(": "(", ")": ")", ",": ","}
_CHAR_HINTS: Final[Mapping[str, str]] = {
    "!": "use 'not'", "&": "use 'and'", "|": "use 'or'", "=": "compare with '=='",
}
_LANGUAGE: Final = (
    "conditions use success(), failure(), done(), exitcode(), running(), notrunning(), "
    "exists(), 'and', 'or', 'not' and parentheses"
)
_EXAMPLE: Final = "write e.g. success(fetch-feeds)"


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "string", "(", ")", ",", "op", "end"]
    text: str
    pos: int
    """0-based offset into the source."""


def _where(text: str, pos: int) -> tuple[str, int]:
    line_start = text.rfind("\n", 0, pos) + 1
    column = pos - line_start + 1
    if "\n" not in text:
        return f"column {column}", column
    return f"line {text.count(chr(10), 0, pos) + 1}, column {column}", column


def _fail(text: str, what: str, pos: int, hint: str | None = None, found: str | None = None) -> ConditionError:
    place, column = _where(text, pos)
    message = f"requires: {what} at {place}" + (f", found {found}" if found else "") + (f"; {hint}" if hint else "")
    return ConditionError(message, column)


def _tokens(text: str) -> Iterator[_Token]:
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            yield _Token("end", "", pos)
            return
        char = text[pos]
        if char in "(),":
            yield _Token(_PUNCTUATION[char], char, pos)
            pos += 1
        elif char in "\"'":
            end = text.find(char, pos + 1)
            if end < 0:
                raise _fail(text, "unterminated string", pos, f"close it with {char}")
            yield _Token("string", text[pos + 1:end], pos)
            pos = end + 1
        elif match := _OP.match(text, pos) or _WORD.match(text, pos):
            yield _Token("op" if match.re is _OP else "word", match.group(), pos)
            pos = match.end()
        else:
            raise _fail(text, f"unexpected character {char!r}", pos, _CHAR_HINTS.get(char, _LANGUAGE))


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end"
    if token.kind == "string":
        return f"the string {token.text!r}"
    if token.kind == "word" and _NUMBER.fullmatch(token.text):
        return f"the number {token.text}"
    return f"'{token.text}'"


# ---------------------------------------------------------------- parsing

def parse_condition(text: str) -> Condition:
    """Parse a `requires` expression; raise ConditionError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ConditionError(f"requires: expected a string such as \"success(fetch-feeds)\", got {text!r}")
    parser = _Parser(text)
    tree = parser.parse()
    return Condition(text, frozenset(parser.events), tuple(parser.paths), tree)


class _Parser:
    """Recursive descent over: or_expr := and_expr ('or' and_expr)*; and_expr := not_expr ('and' ...)*;
    not_expr := 'not'* atom; atom := '(' or_expr ')' | call."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stream = _tokens(text)
        self.token = next(self.stream)
        self.depth = 0
        self.events: set[str] = set()
        self.paths: dict[str, None] = {}

    def advance(self) -> _Token:
        taken, self.token = self.token, next(self.stream)
        return taken

    def at(self, *kinds: str) -> bool:
        """Whether the current token is of one of `kinds` (a method, so mypy re-reads it after advance())."""
        return self.token.kind in kinds

    def is_word(self, word: str) -> bool:
        return self.at("word") and self.token.text == word

    def fail(self, what: str, token: _Token, hint: str | None = None, found: bool = False) -> ConditionError:
        """The error for `token`; with found=True the message also says what `token` is."""
        return _fail(self.text, what, token.pos, hint, _describe(token) if found else None)

    def parse(self) -> Node:
        if self.at("end"):
            raise ConditionError(f"requires: the expression is empty; {_EXAMPLE}")
        tree = self.or_expr()
        if self.at(")"):
            raise self.fail("unexpected ')'", self.token, "no '(' is open")
        if not self.at("end"):
            raise self.fail(f"unexpected {_describe(self.token)}", self.token, self._keyword_hint())
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
            opened = _where(self.text, opening.pos)[0]
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
            raise self.fail(f"expected '(' after '{name.text}'", self.token, found=True)
        opening = self.advance()
        args = self.arguments(name.text, opening)
        lookback = self.lookback(args[1]) if len(args) > 1 else None
        if name.text == "exitcode":
            return self.comparison(args[0].text, lookback)
        if self.at("op"):
            raise self.fail(f"unexpected '{self.token.text}'", self.token,
                            "only exitcode() is compared with a number")
        if name.text == "exists":
            self.paths.setdefault(args[0].text, None)
            return Exists(args[0].text)
        self.events.add(args[0].text)
        if name.text in ("running", "notrunning"):
            return Running(args[0].text, name.text == "running")
        test: Literal["success", "failure", "done"] = (
            "success" if name.text == "success" else "failure" if name.text == "failure" else "done")
        return Outcome(test, args[0].text, lookback)

    def check_function(self, name: _Token) -> None:
        if name.text in FUNCTIONS:
            return
        if _NUMBER.fullmatch(name.text):
            raise self.fail("expected a condition", name, _EXAMPLE, found=True)
        expected = "expected one of " + ", ".join(FUNCTIONS)
        if "." in name.text:
            raise self.fail(f"attribute access is not allowed ('{name.text}')", name, expected)
        if not self.at("("):
            raise self.fail("expected a condition", name, found=True,
                            hint=f"to test an event write e.g. success({name.text}) or running({name.text})")
        close = difflib.get_close_matches(name.text.lower(), FUNCTIONS, n=1)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        raise self.fail(f"unknown function '{name.text}'", name, expected + suggestion)

    def arguments(self, function: str, opening: _Token) -> list[_Token]:
        args: list[_Token] = []
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

    def fail_argument_end(self, function: str, opening: _Token) -> None:
        opened = _where(self.text, opening.pos)[0]
        if self.at("end"):
            raise self.fail("missing ')'", self.token, f"'{function}(' at {opened} is not closed")
        if self.at("("):
            raise self.fail(f"calls cannot be nested ('(' inside '{function}(')", self.token,
                            "combine conditions with 'and', 'or' and 'not'")
        raise self.fail("expected ',' or ')'", self.token, found=True)

    def check_argument(self, function: str, index: int, token: _Token) -> None:
        limit = 2 if function in _LOOKBACK_FUNCTIONS else 1
        if index >= limit:
            raise self.fail(f"too many arguments to {function}()", token, f"{function}() takes {_ARITY[function]}")
        if index == 1:
            return
        if function == "exists":
            if token.kind != "string" or not token.text:
                raise self.fail("exists() takes a quoted, non-empty path", token, _ARGUMENT_EXAMPLE["exists"])
        elif not _EVENT_NAME.fullmatch(token.text):
            raise self.fail(f"{_describe(token)} is not an event name", token,
                            "names use lowercase letters, digits, '.', '_' and '-', "
                            "and start with a letter or digit")

    def lookback(self, token: _Token) -> Lookback:
        try:
            seconds = parse_duration(token.text)
        except DurationError:
            raise self.fail(f"bad lookback {token.text!r}", token,
                            'expected a duration such as "12h", "30m", "1d" or "2h30m"') from None
        if seconds <= 0:
            raise self.fail(f"lookback {token.text!r} is zero", token, "use a duration longer than zero")
        return Lookback(seconds, token.text)

    def comparison(self, event: str, lookback: Lookback | None) -> ExitCode:
        self.events.add(event)
        if not self.at("op"):
            raise self.fail(f"exitcode({event}) must be compared with a number", self.token,
                            f"e.g. exitcode({event}) == 0")
        op = self.advance()
        number = self.token
        if number.kind != "word" or not _INTEGER.fullmatch(number.text):
            raise self.fail(f"expected a whole number after '{op.text}'", number, found=True)
        self.advance()
        return ExitCode(event, op.text, int(number.text), lookback)


_ARGUMENT: Final[Mapping[str, str]] = {
    **{name: "an event name" for name in FUNCTIONS}, "exists": "a quoted path",
}
_ARGUMENT_EXAMPLE: Final[Mapping[str, str]] = {
    **{name: f"e.g. {name}(fetch-feeds)" for name in FUNCTIONS},
    "exitcode": "e.g. exitcode(fetch-feeds) == 0", "exists": 'e.g. exists("feeds/today.json")',
}
_ARITY: Final[Mapping[str, str]] = {
    **{name: 'an event name and an optional lookback such as "12h"' for name in _LOOKBACK_FUNCTIONS},
    "running": "exactly one event name", "notrunning": "exactly one event name",
    "exists": "exactly one quoted path",
}


# ---------------------------------------------------------------- rendering

def render(node: Node) -> str:
    """The clause as a user would write it; reasons quote it."""
    match node:
        case Outcome(test, event, lookback):
            return f"{test}({event}{_render_lookback(lookback)})"
        case ExitCode(event, op, number, lookback):
            return f"exitcode({event}{_render_lookback(lookback)}) {op} {number}"
        case Running(event, wanted):
            return f"{'running' if wanted else 'notrunning'}({event})"
        case Exists(path):
            return f"exists({_quote(path)})"
        case Not(operand):
            return f"not {_render_operand(operand)}"
        case AllOf(items):
            return " and ".join(f"({render(i)})" if isinstance(i, AnyOf) else render(i) for i in items)
        case AnyOf(items):
            return " or ".join(render(item) for item in items)


def _render_operand(node: Node) -> str:
    return f"({render(node)})" if isinstance(node, (AllOf, AnyOf)) else render(node)


def _render_lookback(lookback: Lookback | None) -> str:
    if lookback is None:
        return ""
    text = lookback.text
    return f", {text}" if _WORD.fullmatch(text) else f", {_quote(text)}"


def _quote(text: str) -> str:
    return f"'{text}'" if '"' in text else f'"{text}"'


# ---------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class Finished:
    """The most recent finished run of an event."""
    state: RunState
    ended_at: datetime
    exit_code: int | None


class StateView(Protocol):
    def last_finished(self, event: str) -> Finished | None:
        """The most recent finished run, skipped runs left out; None if it never finished."""
        ...

    def is_running(self, event: str) -> bool: ...

    def path_exists(self, path: str) -> bool:
        """The caller resolves relative paths and globs."""
        ...


_OUTCOME_STATES: Final[Mapping[str, frozenset[RunState]]] = {
    "success": frozenset({RunState.SUCCEEDED}),
    "failure": FAILED_STATES,
    "done": FAILED_STATES | {RunState.SUCCEEDED},
}
_OUTCOME_NOUNS: Final[Mapping[str, str]] = {"success": "success", "failure": "failure", "done": "run"}
_STATE_WORDS: Final[Mapping[RunState, str]] = {
    RunState.SUCCEEDED: "succeeded", RunState.FAILED: "failed", RunState.KILLED: "was killed",
    RunState.LOST: "was lost", RunState.MISSED: "was missed", RunState.SKIPPED: "was skipped",
    RunState.WAITING: "was waiting", RunState.RUNNING: "was running",
}
_COMPARE: Final[Mapping[str, Callable[[int, int], bool]]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}


def evaluate(cond: Condition, view: StateView, now: datetime) -> tuple[bool, str | None]:
    """(holds, reason); reason names the first clause that makes it false, None when it holds.

    Short-circuits, so the view is asked only what the answer needs. Naive datetimes are UTC.
    """
    now = _utc(now)
    asked = _Asked(view)
    if _holds(cond.tree, asked, now):  # the usual answer on the hot path: no reason to word
        return True, None
    holds, why = _evaluate(cond.tree, asked, now)
    return holds, None if holds else why


class _Asked:
    """The view, asking each question once: reasons are worded in a second pass, which
    must see the answers the first one saw."""

    def __init__(self, view: StateView) -> None:
        self._view = view
        self._finished: dict[str, Finished | None] = {}
        self._running: dict[str, bool] = {}
        self._exists: dict[str, bool] = {}

    def last_finished(self, event: str) -> Finished | None:
        if event not in self._finished:
            self._finished[event] = self._view.last_finished(event)
        return self._finished[event]

    def is_running(self, event: str) -> bool:
        if event not in self._running:
            self._running[event] = self._view.is_running(event)
        return self._running[event]

    def path_exists(self, path: str) -> bool:
        if path not in self._exists:
            self._exists[path] = self._view.path_exists(path)
        return self._exists[path]


def _holds(node: Node, view: StateView, now: datetime) -> bool:
    """_evaluate(node, ...)[0] without wording reasons (which cost ten times the answer)."""
    match node:
        case AllOf(items):
            return all(_holds(item, view, now) for item in items)
        case AnyOf(items):
            return any(_holds(item, view, now) for item in items)
        case Not(operand):
            return not _holds(operand, view, now)
        case Running(event, wanted):
            return view.is_running(event) == wanted
        case Exists(path):
            return view.path_exists(path)
        case Outcome() | ExitCode():
            return _finished_holds(node, view.last_finished(node.event), now)
    return False


def _finished_holds(node: Outcome | ExitCode, last: Finished | None, now: datetime) -> bool:
    if last is None:
        return False
    if isinstance(node, Outcome):
        holds = last.state in _OUTCOME_STATES[node.test]
    else:
        holds = last.exit_code is not None and _COMPARE[node.op](last.exit_code, node.number)
    if not holds:
        return False
    return node.lookback is None or max((now - _utc(last.ended_at)).total_seconds(), 0.0) <= node.lookback.seconds


def _evaluate(node: Node, view: StateView, now: datetime) -> tuple[bool, str]:
    """(holds, why): `why` explains the result either way, so `not` can say what held."""
    match node:
        case AllOf(items):
            for item in items:
                holds, why = _evaluate(item, view, now)
                if not holds:
                    return False, why
            return True, f"({render(node)}) is true"
        case AnyOf(items):
            reasons = []
            for item in items:
                holds, why = _evaluate(item, view, now)
                if holds:
                    return True, why
                reasons.append(why)
            return False, "; ".join(reasons)
        case Not(operand):
            holds, why = _evaluate(operand, view, now)
            return (False, why) if holds else (True, f"{render(node)} is true")
        case Running(event, wanted):
            return _evaluate_running(node, view.is_running(event))
        case Exists(path):
            if view.path_exists(path):
                return True, f"{render(node)} is true"
            return False, f"{render(node)} is false: no such file"
        case Outcome() | ExitCode():
            return _evaluate_finished(node, view.last_finished(node.event), now)


def _evaluate_running(node: Running, is_running: bool) -> tuple[bool, str]:
    clause = render(node)
    if is_running == node.wanted:
        return True, f"{clause} is true: it is {'' if is_running else 'not '}running"
    return False, f"{clause} is false" + ("" if node.wanted else ": it is running")


def _evaluate_finished(node: Outcome | ExitCode, last: Finished | None, now: datetime) -> tuple[bool, str]:
    clause = render(node)
    if last is None:
        return False, f"{clause} is false: it has never finished"
    ended = _utc(last.ended_at)
    said = f"its last run {_STATE_WORDS[last.state]} at {_stamp(ended)}"
    if isinstance(node, Outcome):
        holds, noun = last.state in _OUTCOME_STATES[node.test], _OUTCOME_NOUNS[node.test]
    elif last.exit_code is None:
        holds, noun, said = False, "run", f"{said} without an exit code"
    else:
        holds, noun = _COMPARE[node.op](last.exit_code, node.number), "run"
        said = f"its last run exited with {last.exit_code} at {_stamp(ended)}"
    if not holds:
        return False, f"{clause} is false: {said}"
    age = max((now - ended).total_seconds(), 0.0)
    if node.lookback is not None and age > node.lookback.seconds:
        return False, f"{clause} is false: last {noun} ended {format_duration(age)} ago"
    return True, f"{clause} is true: {said}"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _stamp(at: datetime) -> str:
    """2026-01-01T06:00Z; seconds only when there are some."""
    return at.strftime("%Y-%m-%dT%H:%MZ" if at.second == 0 and at.microsecond == 0 else "%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- cycles

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
                return path[on_path[target]:] + [target]
            elif target not in finished:
                on_path[target] = len(path)
                path.append(target)
                stack.append(iter(graph.get(target, ())))
    return None
