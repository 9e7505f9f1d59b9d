from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from evman.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    ConditionError,
    Exists,
    ExitCode,
    Finished,
    Lookback,
    Not,
    Outcome,
    Running,
    StateView,
    evaluate,
    find_cycle,
    parse_condition,
    render,
)
from evman.engine.model import RunState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class MemoryView:
    """A StateView over in-memory runs; records every question it is asked."""

    def __init__(self) -> None:
        self.runs: dict[str, list[Finished]] = {}
        self.running: set[str] = set()
        self.paths: set[str] = set()
        self.groups: dict[str, list[str]] = {}
        self.waiting: set[str] = set()
        self.asked: list[str] = []

    def finish(self, event: str, state: RunState, ended_at: datetime, exit_code: int | None = None) -> None:
        self.runs.setdefault(event, []).append(Finished(state, ended_at, exit_code))

    def last_finished(self, event: str) -> Finished | None:
        self.asked.append(f"last_finished({event})")
        counted = [run for run in self.runs.get(event, []) if run.state is not RunState.SKIPPED]
        return max(counted, key=lambda run: run.ended_at, default=None)

    def is_running(self, event: str) -> bool:
        self.asked.append(f"is_running({event})")
        return event in self.running

    def path_exists(self, path: str) -> bool:
        self.asked.append(f"path_exists({path})")
        return path in self.paths

    def group_members(self, group: str) -> list[str]:
        self.asked.append(f"group_members({group})")
        return self.groups.get(group, [])

    def is_waiting(self, event: str) -> bool:
        self.asked.append(f"is_waiting({event})")
        return event in self.waiting


def check(text: str, view: StateView, now: datetime = NOW) -> tuple[bool, str | None]:
    return evaluate(parse_condition(text), view, now)


def a(event: str) -> Outcome:
    return Outcome("success", event)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("success(fetch-feeds)", Outcome("success", "fetch-feeds")),
        ("failure(fetch.v2)", Outcome("failure", "fetch.v2")),
        ("done(load_db)", Outcome("done", "load_db")),
        ("running(x)", Running("x", True)),
        ("notrunning(x)", Running("x", False)),
        ('exists("feeds/today.json")', Exists("feeds/today.json")),
        ("exists('say \"hi\".txt')", Exists('say "hi".txt')),
        ('success("fetch-feeds")', Outcome("success", "fetch-feeds")),
        ("success('fetch-feeds')", Outcome("success", "fetch-feeds")),
        ("success(42)", Outcome("success", "42")),
        ('success(fetch, "12h")', Outcome("success", "fetch", Lookback(43200.0, "12h"))),
        ("failure(fetch, 2h30m)", Outcome("failure", "fetch", Lookback(9000.0, "2h30m"))),
        ('done(fetch, "1d 2h")', Outcome("done", "fetch", Lookback(93600.0, "1d 2h"))),
        ("exitcode(e) == 0", ExitCode("e", "==", 0)),
        ("exitcode(e) != 1", ExitCode("e", "!=", 1)),
        ("exitcode(e) < 2", ExitCode("e", "<", 2)),
        ("exitcode(e) > 3", ExitCode("e", ">", 3)),
        ("exitcode(e) <= 4", ExitCode("e", "<=", 4)),
        ("exitcode(e)>=-9", ExitCode("e", ">=", -9)),
        ('exitcode(e, "30m") == 0', ExitCode("e", "==", 0, Lookback(1800.0, "30m"))),
        ("  success( a )\n\tand\n running(b) ", AllOf((a("a"), Running("b", True)))),
    ],
)
def test_parses_every_construct(text: str, tree: object) -> None:
    assert parse_condition(text).tree == tree


def test_collects_events_and_paths() -> None:
    cond = parse_condition(
        'success(a) and (failure(b) or exitcode(c) == 1) and not running(a) and exists("x") '
        "and notrunning(d) and exists('y') and exists(\"x\") and done(e)"
    )
    assert cond.events == frozenset({"a", "b", "c", "d", "e"})
    assert cond.paths == ("x", "y")
    assert cond.source.startswith("success(a) and (failure(b)")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("success(a) or success(b) and success(c)", AnyOf((a("a"), AllOf((a("b"), a("c")))))),
        ("success(a) and success(b) or success(c)", AnyOf((AllOf((a("a"), a("b"))), a("c")))),
        ("not success(a) and success(b)", AllOf((Not(a("a")), a("b")))),
        ("not success(a) or success(b)", AnyOf((Not(a("a")), a("b")))),
        ("(success(a) or success(b)) and success(c)", AllOf((AnyOf((a("a"), a("b"))), a("c")))),
        ("not (success(a) and success(b))", Not(AllOf((a("a"), a("b"))))),
        ("success(a) and success(b) and success(c)", AllOf((a("a"), a("b"), a("c")))),
        ("success(a) or (success(b) or success(c))", AnyOf((a("a"), AnyOf((a("b"), a("c")))))),
        ("((success(a)))", a("a")),
        ("not not success(a)", a("a")),
        ("not not not success(a)", Not(a("a"))),
    ],
)
def test_precedence_and_parentheses(text: str, tree: object) -> None:
    assert parse_condition(text).tree == tree


@pytest.mark.parametrize(
    "text",
    [
        "success(a, 12h) or failure(b.c_d, 1d2h) and not (done(x) or exitcode(y) != -9)",
        'exists("feeds/x") and notrunning(q) and not running(r)',
        "(success(a) or success(b)) and not (success(c) and success(d))",
        "done(a, '1d 2h')",
    ],
)
def test_render_parses_back_to_the_same_tree(text: str) -> None:
    cond = parse_condition(text)
    assert parse_condition(render(cond.tree)).tree == cond.tree
    assert str(cond) == render(cond.tree)


def test_render_is_the_canonical_form() -> None:
    cond = parse_condition('success( "fetch" , "12h" )  and  (running(a) or exitcode(b)>=2)')
    assert str(cond) == "success(fetch, 12h) and (running(a) or exitcode(b) >= 2)"


MALFORMED = [
    ("", "requires: the expression is empty; write e.g. success(fetch-feeds)", None),
    ("   ", "requires: the expression is empty; write e.g. success(fetch-feeds)", None),
    (
        "sucess(a)",
        "requires: unknown function 'sucess' at column 1; expected one of success, failure, done, "
        "exitcode, running, notrunning, exists (did you mean 'success'?)",
        1,
    ),
    (
        "frobnicate(a)",
        "requires: unknown function 'frobnicate' at column 1; expected one of success, failure, done, "
        "exitcode, running, notrunning, exists",
        1,
    ),
    (
        '__import__("os")',
        "requires: unknown function '__import__' at column 1; expected one of success, failure, done, "
        "exitcode, running, notrunning, exists",
        1,
    ),
    (
        'os.system("ls")',
        "requires: attribute access is not allowed ('os.system') at column 1; expected one of success, "
        "failure, done, exitcode, running, notrunning, exists",
        1,
    ),
    (
        "success(a).real",
        "requires: unexpected '.real' at column 11; attribute access is not allowed; expected 'and', 'or' or the end",
        11,
    ),
    ("success(a", "requires: missing ')' at column 10; 'success(' at column 8 is not closed", 10),
    ("(success(a)", "requires: missing ')' at column 12; the '(' at column 1 is not closed", 12),
    (
        "(success(a) success(b))",
        "requires: expected 'and', 'or' or ')' at column 13, found 'success'; the '(' at column 1 is still open",
        13,
    ),
    ("success(a))", "requires: unexpected ')' at column 11; no '(' is open", 11),
    ("success()", "requires: success() needs an event name at column 9; e.g. success(fetch-feeds)", 9),
    ("exists()", 'requires: exists() needs a quoted path at column 8; e.g. exists("feeds/today.json")', 8),
    (
        'running(a, "1h")',
        "requires: too many arguments to running() at column 12; running() takes exactly one event name",
        12,
    ),
    (
        'success(a, "1h", b)',
        "requires: too many arguments to success() at column 18; success() takes an event name and an "
        'optional lookback such as "12h"',
        18,
    ),
    (
        'success(a, "12x")',
        'requires: bad lookback \'12x\' at column 12; expected a duration such as "12h", "30m", "1d" or "2h30m"',
        12,
    ),
    (
        "success(a, -1h)",
        'requires: bad lookback \'-1h\' at column 12; expected a duration such as "12h", "30m", "1d" or "2h30m"',
        12,
    ),
    ("success(a, 0s)", "requires: lookback '0s' is zero at column 12; use a duration longer than zero", 12),
    ("42", "requires: expected a condition at column 1, found the number 42; write e.g. success(fetch-feeds)", 1),
    (
        "success(a) and 1.5",
        "requires: expected a condition at column 16, found the number 1.5; write e.g. success(fetch-feeds)",
        16,
    ),
    (
        "success(-1)",
        "requires: the number -1 is not an event name at column 9; names use lowercase letters, digits, "
        "'.', '_' and '-', and start with a letter or digit",
        9,
    ),
    (
        "success(Fetch)",
        "requires: 'Fetch' is not an event name at column 9; names use lowercase letters, digits, "
        "'.', '_' and '-', and start with a letter or digit",
        9,
    ),
    ("exitcode(a) == b", "requires: expected a whole number after '==' at column 16, found 'b'", 16),
    ("exitcode(a) == 1.5", "requires: expected a whole number after '==' at column 16, found the number 1.5", 16),
    ("exitcode(a)", "requires: exitcode(a) must be compared with a number at column 12; e.g. exitcode(a) == 0", 12),
    ("exitcode(a) = 0", "requires: unexpected character '=' at column 13; compare with '=='", 13),
    ("success(a) == 0", "requires: unexpected '==' at column 12; only exitcode() is compared with a number", 12),
    ("success(a) success(b)", "requires: unexpected 'success' at column 12; expected 'and', 'or' or the end", 12),
    (
        "success(a) AND success(b)",
        "requires: unexpected 'AND' at column 12; expected 'and', 'or' or the end; keywords are lowercase",
        12,
    ),
    ("success(a) && success(b)", "requires: unexpected character '&' at column 12; use 'and'", 12),
    ("success(a) || success(b)", "requires: unexpected character '|' at column 12; use 'or'", 12),
    ("!success(a)", "requires: unexpected character '!' at column 1; use 'not'", 1),
    (
        "success(a) and",
        "requires: expected a condition at column 15, found the end; write e.g. success(fetch-feeds)",
        15,
    ),
    ("and success(a)", "requires: expected a condition at column 1, found 'and'; write e.g. success(fetch-feeds)", 1),
    ("not", "requires: expected a condition at column 4, found the end; write e.g. success(fetch-feeds)", 4),
    (
        "fetch",
        "requires: expected a condition at column 1, found 'fetch'; to test an event write e.g. "
        "success(fetch) or running(fetch)",
        1,
    ),
    ("success a", "requires: expected '(' after 'success' at column 9, found 'a'", 9),
    (
        "success(running(a))",
        "requires: calls cannot be nested ('(' inside 'success(') at column 16; combine conditions with "
        "'and', 'or' and 'not'",
        16,
    ),
    ("success(a b)", "requires: expected ',' or ')' at column 11, found 'b'", 11),
    ("success(a,)", "requires: expected an argument to success() at column 11, found ')'", 11),
    (
        "exists(feeds)",
        'requires: exists() takes a quoted, non-empty path at column 8; e.g. exists("feeds/today.json")',
        8,
    ),
    ('exists("")', 'requires: exists() takes a quoted, non-empty path at column 8; e.g. exists("feeds/today.json")', 8),
    ('success("a', 'requires: unterminated string at column 9; close it with "', 9),
    (
        "lambda: 1",
        "requires: unexpected character ':' at column 7; conditions use success(), failure(), done(), "
        "exitcode(), running(), notrunning(), exists(), 'and', 'or', 'not' and parentheses",
        7,
    ),
    (
        "success(a)[0]",
        "requires: unexpected character '[' at column 11; conditions use success(), failure(), done(), "
        "exitcode(), running(), notrunning(), exists(), 'and', 'or', 'not' and parentheses",
        11,
    ),
    (
        "success(a) and\n  sucess(b)",
        "requires: unknown function 'sucess' at line 2, column 3; expected one of success, failure, done, "
        "exitcode, running, notrunning, exists (did you mean 'success'?)",
        3,
    ),
    (
        "(" * 60 + "success(a)" + ")" * 60,
        "requires: parentheses nest more than 50 deep at column 51; simplify the expression",
        51,
    ),
]


@pytest.mark.parametrize(("text", "message", "column"), MALFORMED, ids=[repr(m[0])[:30] for m in MALFORMED])
def test_malformed_expressions_say_what_and_where(text: str, message: str, column: int | None) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    assert str(caught.value) == message
    assert caught.value.column == column


def test_condition_error_is_a_value_error() -> None:
    assert issubclass(ConditionError, ValueError)


def test_refuses_a_non_string() -> None:
    with pytest.raises(ConditionError, match="expected a string"):
        parse_condition(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- evaluation


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


@pytest.mark.parametrize(
    ("state", "success", "failure", "done"),
    [
        (RunState.SUCCEEDED, True, False, True),
        (RunState.FAILED, False, True, True),
        (RunState.KILLED, False, True, True),
        (RunState.LOST, False, True, True),
        (RunState.MISSED, False, False, False),
    ],
)
def test_outcome_of_the_last_finished_run(state: RunState, success: bool, failure: bool, done: bool) -> None:
    view = MemoryView()
    view.finish("e", RunState.SUCCEEDED if state is RunState.FAILED else RunState.FAILED, hours_ago(5))
    view.finish("e", state, hours_ago(1))
    assert check("success(e)", view)[0] is success
    assert check("failure(e)", view)[0] is failure
    assert check("done(e)", view)[0] is done


def test_never_finished_is_false_for_every_outcome() -> None:
    view = MemoryView()
    for text in ("success(e)", "failure(e)", "done(e)", "exitcode(e) == 0", "exitcode(e) != 0"):
        holds, reason = check(text, view)
        assert holds is False
        assert reason == f"{text} is false: it has never finished"


def test_a_skipped_run_does_not_hide_the_one_before() -> None:
    view = MemoryView()
    view.finish("e", RunState.SUCCEEDED, hours_ago(2))
    view.finish("e", RunState.SKIPPED, hours_ago(1))
    assert check("success(e)", view) == (True, None)


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("exitcode(e) == 2", True),
        ("exitcode(e) == 0", False),
        ("exitcode(e) != 0", True),
        ("exitcode(e) != 2", False),
        ("exitcode(e) < 3", True),
        ("exitcode(e) < 2", False),
        ("exitcode(e) > 1", True),
        ("exitcode(e) > 2", False),
        ("exitcode(e) <= 2", True),
        ("exitcode(e) <= 1", False),
        ("exitcode(e) >= 2", True),
        ("exitcode(e) >= 3", False),
    ],
)
def test_exitcode_comparisons(text: str, holds: bool) -> None:
    view = MemoryView()
    view.finish("e", RunState.FAILED, hours_ago(1), exit_code=2)
    assert check(text, view)[0] is holds


@pytest.mark.parametrize("text", ["exitcode(e) == 0", "exitcode(e) != 0", "exitcode(e) >= -1000"])
def test_a_missing_exit_code_never_compares(text: str) -> None:
    view = MemoryView()
    view.finish("e", RunState.KILLED, datetime(2026, 1, 1, 6, 0, tzinfo=UTC), exit_code=None)
    assert check(text, view) == (
        False,
        f"{text} is false: its last run was killed at 2026-01-01T06:00Z without an exit code",
    )


def test_exitcode_reason_names_the_code() -> None:
    view = MemoryView()
    view.finish("e", RunState.FAILED, datetime(2026, 1, 1, 6, 0, 30, tzinfo=UTC), exit_code=3)
    assert check("exitcode(e) == 0", view) == (
        False,
        "exitcode(e) == 0 is false: its last run exited with 3 at 2026-01-01T06:00:30Z",
    )


def test_running_and_notrunning() -> None:
    view = MemoryView()
    assert check("running(x)", view) == (False, "running(x) is false")
    assert check("notrunning(x)", view) == (True, None)
    view.running.add("x")
    assert check("running(x)", view) == (True, None)
    assert check("notrunning(x)", view) == (False, "notrunning(x) is false: it is running")


def test_exists_asks_the_view_with_the_path_as_written() -> None:
    view = MemoryView()
    assert check('exists("feeds/x")', view) == (False, 'exists("feeds/x") is false: no such file')
    view.paths.add("feeds/x")
    assert check('exists("feeds/x")', view) == (True, None)
    assert view.asked == ["path_exists(feeds/x)", "path_exists(feeds/x)"]


def test_reason_for_a_failed_last_run() -> None:
    view = MemoryView()
    view.finish("fetch", RunState.FAILED, datetime(2026, 1, 1, 6, 0, tzinfo=UTC), exit_code=1)
    assert check("success(fetch)", view) == (False, "success(fetch) is false: its last run failed at 2026-01-01T06:00Z")


@pytest.mark.parametrize(
    ("state", "words"), [(RunState.KILLED, "was killed"), (RunState.LOST, "was lost"), (RunState.MISSED, "was missed")]
)
def test_reason_words_for_other_endings(state: RunState, words: str) -> None:
    view = MemoryView()
    view.finish("fetch", state, datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert check("success(fetch)", view)[1] == f"success(fetch) is false: its last run {words} at 2026-01-01T06:00Z"


def test_reason_for_failure_when_it_succeeded() -> None:
    view = MemoryView()
    view.finish("fetch", RunState.SUCCEEDED, datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert check("failure(fetch)", view) == (
        False,
        "failure(fetch) is false: its last run succeeded at 2026-01-01T06:00Z",
    )


# ---------------------------------------------------------------- lookback


@pytest.mark.parametrize(
    ("text", "state", "noun"),
    [
        ('success(fetch, "12h")', RunState.SUCCEEDED, "success"),
        ("failure(fetch, 12h)", RunState.FAILED, "failure"),
        ("done(fetch, 12h)", RunState.LOST, "run"),
    ],
)
def test_lookback_on_ended_at(text: str, state: RunState, noun: str) -> None:
    view = MemoryView()
    view.finish("fetch", state, hours_ago(11))
    assert check(text, view) == (True, None)
    clause = render(parse_condition(text).tree)
    later = NOW + timedelta(hours=2)
    assert check(text, view, later) == (False, f"{clause} is false: last {noun} ended 13h ago")


def test_lookback_boundary_is_inclusive() -> None:
    view = MemoryView()
    view.finish("fetch", RunState.SUCCEEDED, hours_ago(12))
    assert check("success(fetch, 12h)", view)[0] is True
    assert check("success(fetch, 12h)", view, NOW + timedelta(seconds=1)) == (
        False,
        "success(fetch, 12h) is false: last success ended 12h ago",
    )


def test_lookback_reports_the_failure_before_the_age() -> None:
    view = MemoryView()
    view.finish("fetch", RunState.FAILED, datetime(2025, 12, 1, tzinfo=UTC))
    assert check("success(fetch, 12h)", view)[1] == (
        "success(fetch, 12h) is false: its last run failed at 2025-12-01T00:00Z"
    )


def test_exitcode_lookback() -> None:
    view = MemoryView()
    view.finish("e", RunState.SUCCEEDED, hours_ago(3), exit_code=0)
    assert check("exitcode(e, 4h) == 0", view) == (True, None)
    assert check("exitcode(e, 2h) == 0", view) == (False, "exitcode(e, 2h) == 0 is false: last run ended 3h ago")


def test_naive_times_are_utc_and_future_ends_count_as_now() -> None:
    view = MemoryView()
    view.finish("e", RunState.SUCCEEDED, datetime(2026, 1, 1, 11, 0))
    assert check("success(e, 2h)", view, datetime(2026, 1, 1, 12, 0)) == (True, None)
    assert check("success(e, 1s)", view, datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == (True, None)


# ---------------------------------------------------------------- composition and laziness


def test_and_names_the_first_false_clause() -> None:
    view = MemoryView()
    view.finish("a", RunState.SUCCEEDED, hours_ago(1))
    view.running.add("p")
    assert check("success(a) and not running(p) and success(b)", view) == (False, "running(p) is true: it is running")


def test_or_names_every_false_clause() -> None:
    view = MemoryView()
    assert check('running(x) or exists("f")', view) == (
        False,
        'running(x) is false; exists("f") is false: no such file',
    )


def test_not_says_what_held() -> None:
    view = MemoryView()
    view.finish("a", RunState.SUCCEEDED, datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert check("not success(a)", view) == (False, "success(a) is true: its last run succeeded at 2026-01-01T06:00Z")
    view.finish("b", RunState.SUCCEEDED, hours_ago(1))
    assert check("not (success(a) and success(b))", view) == (False, "(success(a) and success(b)) is true")
    assert check("not (failure(a) or not running(c))", view) == (False, "not running(c) is true")


def test_and_stops_at_the_first_false_clause() -> None:
    view = MemoryView()
    check('success(a) and running(b) and exists("c")', view)
    assert view.asked == ["last_finished(a)"]


def test_or_stops_at_the_first_true_clause() -> None:
    view = MemoryView()
    view.running.add("a")
    assert check('running(a) or success(b) or exists("c")', view) == (True, None)
    assert view.asked == ["is_running(a)"]


def test_each_function_asks_only_its_question() -> None:
    view = MemoryView()
    check("notrunning(a)", view)
    check("exitcode(b) == 0", view)
    assert view.asked == ["is_running(a)", "last_finished(b)"]


def test_a_condition_is_immutable_and_reusable() -> None:
    cond = parse_condition("success(a) or running(b)")
    assert isinstance(cond, Condition)
    view = MemoryView()
    assert evaluate(cond, view, NOW)[0] is False
    view.running.add("b")
    assert evaluate(cond, view, NOW)[0] is True
    with pytest.raises(AttributeError):
        cond.source = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- cycles


def is_cycle_in(cycle: list[str], graph: dict[str, list[str]]) -> bool:
    return cycle[0] == cycle[-1] and all(b in graph.get(a, []) for a, b in itertools.pairwise(cycle))


@pytest.mark.parametrize(
    "graph",
    [
        {},
        {"a": []},
        {"a": ["b"], "b": ["c"], "c": []},
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []},
        {"a": ["b", "c"], "b": ["d"], "c": ["d"]},
        {"x": ["a"], "y": ["a"], "a": ["b"]},
    ],
    ids=["empty", "single", "chain", "diamond", "diamond-with-leaf-not-a-key", "shared-target"],
)
def test_no_cycle(graph: dict[str, list[str]]) -> None:
    assert find_cycle(graph) is None


def test_self_loop() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_three_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


def test_cycle_not_through_the_first_node() -> None:
    graph = {"start": ["x", "a"], "x": [], "a": ["b"], "b": ["c"], "c": ["d", "b"], "d": []}
    assert find_cycle(graph) == ["b", "c", "b"]


def test_cycle_behind_a_diamond() -> None:
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"], "e": ["c"]}
    cycle = find_cycle(graph)
    assert cycle == ["d", "e", "c", "d"]
    assert is_cycle_in(cycle, graph)


def test_edges_may_be_one_shot_iterables() -> None:
    def edges(*targets: str) -> Iterator[str]:
        yield from targets

    assert find_cycle({"a": edges("b"), "b": edges("c"), "c": edges("a")}) == ["a", "b", "c", "a"]


def test_long_chain_and_long_ring_need_no_recursion() -> None:
    """100,000 links: far past Python's recursion limit, so only an iterative walk finishes."""
    size = 100_000
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(size - 1)}
    assert find_cycle(chain) is None
    chain[f"n{size - 1}"] = ["n0"]
    cycle = find_cycle(chain)
    assert cycle is not None
    assert len(cycle) == size + 1
    assert is_cycle_in(cycle, chain)
