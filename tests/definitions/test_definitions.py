"""Definitions files: loading, the problems each kind of mistake reports, export and JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from evman.engine.definitions import (
    DefinitionsError,
    duration_text,
    export_toml,
    load_definitions,
    mask_url,
    parse_definitions,
    spec_from_json,
    spec_to_json,
    spec_to_table,
    validate_event_table,
)
from evman.engine.definitions.positions import Positions
from evman.engine.model import (
    Concurrency,
    Defaults,
    Definitions,
    EventSpec,
    HttpCall,
    Misfire,
    OnFailure,
    OnLost,
    OutputCheck,
    Route,
    Runtime,
    Window,
)
from evman.engine.timing.durations import parse_duration

DEFS = Path(__file__).parent.parent / "data" / "defs"
GOOD = DEFS / "good.toml"


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """good.toml names user = "root", which evman accepts only when it runs as root."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.fixture
def good(as_root: None) -> Definitions:
    return load_definitions(GOOD)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(path)
    return caught.value.problems


def parse(text: str, tmp_path: Path, known_events: Iterable[str] = ()) -> Definitions:
    return parse_definitions(text, source="inline.toml", base_dir=tmp_path, known_events=known_events)


def parse_problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(DefinitionsError) as caught:
        parse(text, tmp_path)
    return caught.value.problems


# ---------------------------------------------------------------- a good file


def test_good_file_defaults_and_routes(good: Definitions) -> None:
    assert good.source == str(GOOD)
    assert good.defaults == Defaults(
        timezone="Europe/London", driver="ops", repeat_s=2700.0, max_repeats=4, at_risk_margin_s=900.0
    )
    assert good.routes == {
        "ops": Route(name="ops", urls=("mailto://user:secret@example.com", "json://127.0.0.1:8025/")),
        "lead": Route(
            name="lead",
            urls=("json://localhost:9/",),
            config=str(DEFS / "apprise.yml"),
            tags=("night",),
            quiet_from="22:00",
            quiet_to="07:00",
            quiet_except=("failed", "lost"),
        ),
        "day": Route(name="day", urls=("json://localhost:10/",), escalate_to="lead", escalate_after_s=1200.0),
    }


def test_good_file_event_with_every_key(good: Definitions) -> None:
    assert good.events[0] == EventSpec(
        name="fetch-feeds",
        description="Fetch the news feeds",
        run=("python", "scripts/fetch.py", "--out", "feeds/to day.json"),
        cwd=str(DEFS / "work"),
        env={"FEEDS": "all", "PORT": "8080"},
        schedule="*/15 * * * *",
        timezone="America/New_York",
        requires="success(collect-garbage) and not running(publish)",
        window=Window(earliest="06:00", latest="22:00"),
        late_after="06:30",
        runtime=Runtime(min_s=2.0, max_s=300.0, kill=True),
        timeout_s=3600.0,
        outputs=(
            OutputCheck(
                path="feeds/today.json", fresh=True, min_size=1, max_age_s=7200.0, contains=r"items\s*:", json=True
            ),
            OutputCheck(path="logs/*.log"),
        ),
        on_success=("promote",),
        on_failure=OnFailure(
            retries=3,
            backoff_s=30.0,
            backoff_max_s=600.0,
            prepare="rm -f feeds/.lock",
            trigger=("notify-maintainers",),
            alert="lead",
        ),
        driver="day",
        concurrency=Concurrency.QUEUE,
        misfire=Misfire.ALL,
        user="root",
        stdin="line one\nline two\n",
        deadline="07:30",
        expect_s=90.0,
        on_lost=OnLost.RERUN,
        hosts=("web1", "web2.example.com"),
        tags=("gpu", "big-mem"),
    )


def test_good_file_other_actions_take_the_defaults(good: Definitions) -> None:
    garbage, publish, promote, notify = good.events[1:]
    assert garbage == EventSpec(
        name="collect-garbage",
        shell="find tmp -mtime +7 -delete | wc -l",
        schedule="every day at 05:00",
        cwd=str(DEFS),
        timezone="Europe/London",
        driver="ops",
    )
    assert publish == EventSpec(
        name="publish",
        call="reports.publish:main",
        cwd=str(DEFS),
        timezone="Europe/London",
        driver="ops",
        deadline="+6h",
    )
    assert (promote.run, promote.concurrency, promote.misfire) == (
        ("cp", "-r", "feeds", "/srv/test feeds"),
        Concurrency.REPLACE,
        Misfire.SKIP,
    )
    assert notify.http == HttpCall(
        url="https://hooks.example.com/evman",
        method="POST",
        expect=204,
        body='{"text": "fetch failed"}',
        headers={"Authorization": "Bearer abc123", "Content-Type": "application/json"},
        timeout_s=10.0,
    )
    assert [spec.kind for spec in good.events] == ["run", "shell", "call", "run", "http"]


def test_no_defaults_table_takes_the_machine_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    defs = parse('[[event]]\nname = "a"\nrun = "true"\n', tmp_path)
    assert defs.defaults == Defaults(timezone="Asia/Tokyo")
    assert (defs.events[0].timezone, defs.events[0].cwd, defs.events[0].driver) == ("Asia/Tokyo", str(tmp_path), None)
    assert defs.routes == {}


def test_known_events_may_be_named_besides_the_files_own(tmp_path: Path) -> None:
    text = '[[event]]\nname = "a"\nrun = "true"\nrequires = "success(elsewhere)"\non_success = ["later"]\n'
    defs = parse(text, tmp_path, known_events={"elsewhere", "later"})
    assert defs.events[0].on_success == ("later",)
    assert len(parse_problems(text, tmp_path)) == 2


def test_without_routes_any_driver_name_goes(tmp_path: Path) -> None:
    defs = parse('[defaults]\ndriver = "pager"\n[[event]]\nname = "a"\nrun = "true"\n', tmp_path)
    assert defs.events[0].driver == "pager"


def test_validate_event_table_alone(tmp_path: Path) -> None:
    table = {"name": "solo", "shell": "echo hi", "driver": "ops", "on_success": ["next"]}
    spec = validate_event_table(
        table, source="db", defaults=Defaults(timezone="UTC"), base_dir=tmp_path, routes={"ops"}, known_events={"next"}
    )
    assert (spec.shell, spec.driver, spec.on_success, spec.cwd) == ("echo hi", "ops", ("next",), str(tmp_path))
    with pytest.raises(DefinitionsError, match=r"db: event 'solo': key 'driver': no route 'ops'"):
        validate_event_table(table, source="db", defaults=Defaults(), base_dir=tmp_path, routes=set())


# ---------------------------------------------------------------- malformed files

MALFORMED = [
    # file, the line of the problem, where, key, what the message says
    ("unknown_key.toml", 4, "event 'backup'", "key 'shedule'", "did you mean 'schedule'?"),
    ("duplicate_name.toml", 6, "event 'backup'", "key 'name'", "already the name of event #1"),
    ("bad_name.toml", 2, "event 'Nightly Backup'", "key 'name'", "not a valid event name"),
    ("two_actions.toml", 4, "event 'backup'", "key 'shell'", "given together with 'run'; expected exactly one of"),
    ("no_action.toml", 1, "event 'backup'", "key 'run'", "missing; expected exactly one of run, shell, call or http"),
    ("bad_schedule.toml", 4, "event 'backup'", "key 'schedule'", "'every blue moon'"),
    ("bad_duration.toml", 4, "event 'backup'", "key 'runtime.max'", "'5 parsecs'"),
    ("bad_time.toml", 4, "event 'backup'", "key 'window.earliest'", "'25:00'"),
    ("unknown_requires.toml", 4, "event 'backup'", "key 'requires'", "unknown event 'dump-database'"),
    (
        "unknown_on_success.toml",
        4,
        "event 'backup'",
        "key 'on_success'",
        "unknown event 'upload'; did you mean 'uploads'?",
    ),
    ("cycle.toml", 4, "event 'backup'", "key 'on_success'", "backup -> upload -> verify -> backup"),
    ("bad_regex.toml", 4, "event 'backup'", "key 'outputs[0].contains'", "not a valid regular expression"),
    ("bad_route_url.toml", 2, "[routes] 'ops'", "key 'urls'", "Apprise cannot use URL 2 of 2, nonsense://"),
    ("unknown_driver.toml", 7, "event 'backup'", "key 'driver'", "no route 'opps' in [routes]; did you mean 'ops'?"),
    ("bad_timezone.toml", 4, "event 'backup'", "key 'timezone'", "did you mean 'Europe/London'?"),
    ("wrong_types.toml", 4, "event 'backup'", "key 'on_failure.retries'", 'got the string "3"; expected an integer'),
]


@pytest.mark.parametrize(("name", "line", "where", "key", "what"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_names_file_line_event_and_key(name: str, line: int, where: str, key: str, what: str) -> None:
    path = DEFS / name
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line}: {where}: ")
    assert name in problem and key in problem and what in problem


def test_route_url_problem_does_not_show_the_password() -> None:
    (problem,) = problems_of(DEFS / "bad_route_url.toml")
    assert "hunter2" not in problem and "admin" not in problem


def test_toml_syntax_error_gives_line_and_column() -> None:
    (problem,) = problems_of(DEFS / "bad_toml.toml")
    assert problem.startswith(f"{DEFS / 'bad_toml.toml'}:3:26: ")
    assert "TOML syntax" in problem


def test_every_problem_is_reported_together() -> None:
    path = DEFS / "three_errors.toml"
    problems = problems_of(path)
    assert len(problems) == 3
    assert [p.split(": key ")[0] for p in problems] == [
        f"{path}:5: event 'backup'",
        f"{path}:6: event 'backup'",
        f"{path}:11: event 'upload'",
    ]
    assert "key 'schedule'" in problems[0] and "key 'concurrency'" in problems[1]
    assert "key 'on_failure.retries'" in problems[2]
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(path)
    assert str(caught.value) == "\n".join(problems)


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert problems_of(missing) == [f"{missing}: no such file; check the path"]
    assert problems_of(tmp_path) == [f"{tmp_path}: is a directory; expected a TOML definitions file"]
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[[event]]\nname = "caf\xe9"\n')
    assert problems_of(latin) == [f"{latin}:2: not UTF-8 text (byte 0xe9); expected a TOML file saved as UTF-8"]


INLINE = [
    # (TOML, a fragment the one problem contains)
    (
        '[[event]]\nname = "a"\ncall = "not a path"\n',
        'key \'call\': got the string "not a path"; expected "package.module:function"',
    ),
    ('[[event]]\nname = "a"\nrun = "echo \'oops"\n', "key 'run': cannot split it into arguments"),
    ('[[event]]\nname = "a"\nrun = []\n', "key 'run': is empty"),
    ('[[event]]\nname = "a"\nrun = "true"\nrequires = "success(a"\n', "key 'requires': missing ')'"),
    ('[[event]]\nname = "a"\nrun = "true"\nrequires = "not done(a)"\n', "key 'requires': dependency cycle a -> a"),
    ('[[event]]\nname = "a"\nrun = "true"\nruntime = "5m"\n', "key 'runtime': got the string \"5m\"; expected a table"),
    (
        '[[event]]\nname = "a"\nrun = "true"\nruntime = { min = "5m", max = "1m" }\n',
        "key 'runtime.min': is longer than max",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nruntime = { kill = true }\n',
        "key 'runtime.kill': is true but there is no max",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nwindow = { earliest = "06:00", latest = "06:00" }\n',
        "key 'window.latest': equals earliest",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nmisfire = "never"\n',
        'key \'misfire\': got the string "never"; expected "once" or "all" or "skip"',
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nenv = { X = true }\n',
        "key 'env.X': got the boolean true; expected a string",
    ),
    ('[[event]]\nname = "a"\nrun = "true"\nouputs = []\n', "unknown key 'ouputs'; did you mean 'outputs'?"),
    (
        '[[event]]\nname = "a"\nrun = "true"\nruntime = { mn = "5m" }\n',
        "unknown key 'runtime.mn'; did you mean 'runtime.min'?",
    ),
    (
        '[[event]]\nname = "a"\nhttp = { url = "ftp://x/" }\n',
        "key 'http.url': got the string \"ftp://x/\"; expected an http",
    ),
    ('[[event]]\nname = "a"\nhttp = { url = "http://x/", expect = 700 }\n', "key 'http.expect': is 700"),
    (
        '[[event]]\nname = "a"\nrun = "true"\non_failure = { backoff = "1h", backoff_max = "1m" }\n',
        "key 'on_failure.backoff': is longer than backoff_max",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\non_failure = { trigger = ["b"] }\n',
        "key 'on_failure.trigger': unknown event 'b'",
    ),
    (
        '[routes]\nops = ["json://h/"]\n[[event]]\nname = "a"\nrun = "true"\non_failure = { alert = "lead" }\n',
        "key 'on_failure.alert': no route 'lead'",
    ),
    (
        '[routes]\nops = ["json://h/"]\n[defaults]\ndriver = "opz"\n',
        "[defaults]: key 'driver': no route 'opz' in [routes]; did you mean 'ops'?",
    ),
    ('[defaults]\ntimezone = "Mars/Olympus"\n', "[defaults]: key 'timezone': unknown timezone 'Mars/Olympus'"),
    ('[defaults]\nrepeat = "0s"\n', "[defaults]: key 'repeat': is zero"),
    (
        '[routes]\nops = { urls = ["json://h/"], escalate_to = "ops" }\n',
        "[routes] 'ops': key 'escalate_to': names this route itself",
    ),
    (
        '[routes]\na = { urls = ["json://h/"], escalate_to = "b" }\nb = { urls = ["json://h/"], escalate_to = "a" }\n',
        "[routes] 'a': key 'escalate_to': escalation loop a -> b -> a",
    ),
    (
        '[routes]\nops = { urls = ["json://h/"], escalate_after = "5m" }\n',
        "[routes] 'ops': key 'escalate_after': given without escalate_to",
    ),
    (
        '[routes]\nops = { urls = ["json://h/"], quiet = { from = "22:00" } }\n',
        "[routes] 'ops': key 'quiet.to': missing",
    ),
    (
        '[routes]\nops = { urls = ["json://h/"], quiet = { from = "22:00", to = "06:00", except = ["late", "loud"] } }\n',
        "key 'quiet.except': unknown alert kind 'loud'",
    ),
    ('[routes]\nops = { config = "missing.yml" }\n', "[routes] 'ops': key 'config': no such file 'missing.yml'"),
    ("[routes]\nops = []\n", "[routes] 'ops': key 'urls': is empty"),
    ('[event]\nname = "a"\n', "[event]: is a single table; write [[event]]"),
    ('[[events]]\nname = "a"\n', "unknown top-level key 'events'; did you mean 'event'?"),
    ('[[event]]\nrun = "true"\n', "event #1: key 'name': missing"),
    (f'[[event]]\nname = "{"a" * 65}"\nrun = "true"\n', "at most 64 characters"),
    # the keys of this round: deadline, expect, on_lost, hosts, tags, at_risk_margin
    ('[[event]]\nname = "a"\nrun = "true"\ndeadline = "25:00"\n', "key 'deadline': "),
    ('[[event]]\nname = "a"\nrun = "true"\ndeadline = 6\n', "key 'deadline': got the number 6; expected a time of day"),
    ('[[event]]\nname = "a"\nrun = "true"\ndeadline = "+soon"\n', "key 'deadline': "),
    ('[[event]]\nname = "a"\nrun = "true"\ndeadline = "+0s"\n', "key 'deadline': is +0s, which every run misses"),
    ('[[event]]\nname = "a"\nrun = "true"\ndeadlin = "06:00"\n', "unknown key 'deadlin'; did you mean 'deadline'?"),
    ('[[event]]\nname = "a"\nrun = "true"\nexpect = "0s"\n', "key 'expect': is zero"),
    ('[[event]]\nname = "a"\nrun = "true"\nexpect = "a while"\n', "key 'expect': "),
    (
        '[[event]]\nname = "a"\nrun = "true"\nexpect = "20m"\nruntime = { max = "10m" }\n',
        "key 'expect': is longer than runtime.max (20m > 10m)",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nexpect = "1s"\nruntime = { min = "2s" }\n',
        "key 'expect': is shorter than runtime.min (1s < 2s)",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\non_lost = "retry"\n',
        'key \'on_lost\': got the string "retry"; expected "alert" or "rerun"',
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nhosts = "web1"\n',
        "key 'hosts': got the string \"web1\"; expected an array of strings",
    ),
    (
        '[[event]]\nname = "a"\nrun = "true"\nhosts = ["web 1"]\n',
        "key 'hosts[0]': 'web 1' is not usable; expected a host name",
    ),
    ('[[event]]\nname = "a"\nrun = "true"\nhosts = ["web1", "web1"]\n', "key 'hosts[1]': 'web1' is listed twice"),
    ('[[event]]\nname = "a"\nrun = "true"\ntags = [""]\n', "key 'tags[0]': '' is not usable; expected a tag"),
    ('[[event]]\nname = "a"\nrun = "true"\ntags = [3]\n', "key 'tags[0]': got the number 3; expected a string"),
    ('[defaults]\nat_risk_margin = "soon"\n', "[defaults]: key 'at_risk_margin': "),
    ('[defaults]\nat_risk_margn = "5m"\n', "[defaults]: unknown key 'at_risk_margn'; did you mean 'at_risk_margin'?"),
]


@pytest.mark.parametrize(("text", "what"), INLINE, ids=[f"inline-{i}" for i in range(len(INLINE))])
def test_inline_mistakes(text: str, what: str, tmp_path: Path) -> None:
    (problem,) = parse_problems(text, tmp_path)
    line = re.match(r"inline\.toml:(\d+): ", problem)
    assert line is not None and 1 <= int(line[1]) <= text.count("\n") and what in problem, problem


def test_another_user_is_checked_where_the_event_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user this machine could not run as loads, with a warning on its line: the engine that
    runs the event (maybe on another host) checks it and fails the run with the reason."""
    text = '[[event]]\nname = "a"\nrun = "true"\nuser = "root"\n'
    monkeypatch.setattr(os, "geteuid", lambda: 54321)
    defs = parse(text, tmp_path)
    assert defs.events[0].user == "root"
    (warning,) = defs.warnings
    assert "inline.toml:4: event 'a': key 'user': warning: evman runs commands as another user only" in warning
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert parse(text, tmp_path).warnings == ()
    (warning,) = parse(text.replace('"root"', '"no-such-user-here"'), tmp_path).warnings
    assert "key 'user': warning: no user 'no-such-user-here' on this machine" in warning


# ---------------------------------------------------------------- export


def test_export_round_trips(good: Definitions, tmp_path: Path) -> None:
    text = export_toml(good, include_secrets=True)
    assert parse_definitions(text, source=good.source, base_dir=tmp_path) == good
    assert "user:secret@" in text and "Bearer abc123" in text


def test_export_masks_secrets(good: Definitions, tmp_path: Path) -> None:
    text = export_toml(good)
    assert "user:secret@" not in text and "abc123" not in text
    assert '"mailto://user:****@example.com/"' in text
    assert 'Authorization = "****"' in text
    again = parse_definitions(text, source="masked.toml", base_dir=tmp_path)
    assert again.events[:4] == good.events[:4]
    assert again.routes["lead"] == good.routes["lead"]


def test_export_leaves_out_what_the_defaults_say(good: Definitions) -> None:
    table = spec_to_table(good.events[2])
    assert table == {
        "name": "publish",
        "call": "reports.publish:main",
        "cwd": str(DEFS),
        "timezone": "Europe/London",
        "driver": "ops",
        "deadline": "+6h",
    }
    exported = export_toml(good).split("[[event]]")[3]
    assert "timezone" not in exported and "driver" not in exported and 'name = "publish"' in exported


def test_mask_url() -> None:
    assert mask_url("mailto://user:secret@example.com") == "mailto://user:****@example.com/"
    assert mask_url("json://127.0.0.1:8025/") == "json://127.0.0.1:8025/"
    assert mask_url("json://u:pw@host/path?method=PUT") == "json://u:****@host/path?method=PUT"
    assert mask_url("nonsense://u:pw@host/x") == "nonsense://u:****@host/x"


@pytest.mark.parametrize("seconds", [0.0, 0.5, 1.5, 90.0, 300.0, 9000.0, 277507.0, 0.0001, 12.25])
def test_duration_text_parses_back_exactly(seconds: float) -> None:
    text = duration_text(seconds)
    assert parse_duration(text) == seconds


def test_duration_text_reads_like_the_docs() -> None:
    assert [duration_text(s) for s in (300.0, 9000.0, 277507.0)] == ["5m", "2h30m", "3d5h5m7s"]


# ---------------------------------------------------------------- JSON for the store


def test_json_round_trip(good: Definitions) -> None:
    for spec in good.events:
        assert spec_from_json(spec_to_json(spec)) == spec
    stored = json.loads(spec_to_json(good.events[0]))
    assert (stored["concurrency"], stored["misfire"], stored["run"][3]) == ("queue", "all", "feeds/to day.json")
    assert (stored["on_lost"], stored["hosts"], stored["expect_s"]) == ("rerun", ["web1", "web2.example.com"], 90.0)
    assert stored["outputs"][0]["max_age_s"] == 7200.0


def test_a_decoded_spec_is_the_one_its_init_would_make(good: Definitions) -> None:
    """spec_from_json fills a spec's fields without its __init__ (EventSpec's 38 fields set one by
    one through object.__setattr__ were most of decoding one): the same object all the same."""
    for spec in good.events:
        decoded = spec_from_json(spec_to_json(spec))
        assert decoded == spec and list(vars(decoded)) == list(vars(spec))
    one, two = (spec_from_json('{"name": "a", "run": ["true"]}') for _ in range(2))
    assert one == EventSpec(name="a", run=("true",)) and hash(one.window) == hash(Window())
    assert one.env is not two.env and one.uses is not two.uses  # a factory's default, made anew each time
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError, match="name"):  # a required field missing: as EventSpec(...) says
        spec_from_json('{"run": ["true"]}')


def test_new_keys_take_their_defaults_when_absent(tmp_path: Path) -> None:
    defs = parse('[[event]]\nname = "a"\nrun = "true"\n', tmp_path)
    spec = defs.events[0]
    assert (spec.deadline, spec.expect_s, spec.on_lost, spec.hosts, spec.tags) == (None, None, OnLost.ALERT, (), ())
    assert defs.defaults.at_risk_margin_s == 600.0
    assert "on_lost" not in spec_to_table(spec) and "hosts" not in spec_to_table(spec)


def test_new_keys_export_and_load_back(good: Definitions, tmp_path: Path) -> None:
    text = export_toml(good)
    assert 'at_risk_margin = "15m"' in text
    first = text.split("[[event]]")[1]
    for line in (
        'deadline = "07:30"',
        'expect = "1m30s"',
        'on_lost = "rerun"',
        "hosts = [",
        '"web2.example.com"',
        "tags = [",
        '"big-mem"',
    ):
        assert line in first
    again = parse_definitions(text, source="again.toml", base_dir=tmp_path)
    assert again.events[0] == good.events[0] and again.defaults == good.defaults


def test_spec_stored_before_the_new_keys_still_decodes(good: Definitions) -> None:
    """A spec JSON written by the previous release: every field but this round's."""
    new = {"deadline", "expect_s", "on_lost", "hosts", "tags"}
    old = {key: value for key, value in json.loads(spec_to_json(good.events[0])).items() if key not in new}
    spec = spec_from_json(json.dumps(old))
    assert (spec.deadline, spec.expect_s, spec.on_lost, spec.hosts, spec.tags) == (None, None, OnLost.ALERT, (), ())
    assert spec.runtime == good.events[0].runtime and spec.on_failure == good.events[0].on_failure


def test_json_tolerates_missing_and_unknown_keys() -> None:
    spec = spec_from_json('{"name": "a", "shell": "true", "from_the_future": 1}')
    assert spec == EventSpec(name="a", shell="true")
    with pytest.raises(ValueError, match="not a JSON object"):
        spec_from_json("[]")


# ---------------------------------------------------------------- the line of every problem

LINES = '''# problems on the lines that hold them, through sub-tables, arrays and multi-line strings
[defaults]
repeat = "0s"

[[event]]
name = "first"
run = "true"
outputs = [
    { path = "a" },
    { path = "b", fresh = "yes" },
]

[[event]]
name = "second"
shell = "x"
env = { A = true }
[event.window]
earliest = "06:00"
latest = "06:00"

[[event.outputs]]
fresh = true

[[event]]
name = "third"
run = "true"
description = """
driver = "a line of text, not a key"
"""
driver = "nobody"
'''


def test_every_problem_names_the_line_of_its_key(tmp_path: Path) -> None:
    text = LINES.replace('driver = "nobody"', 'driver = "nobody"\nrequires = "success(third)"')
    lines = text.splitlines()

    def at(fragment: str, after: str = "") -> int:
        start = lines.index(after) if after else 0
        return next(n for n, line in enumerate(lines, start=1) if n > start and fragment in line)

    problems = parse_problems(text, tmp_path)
    fresh = at('fresh = "yes"')
    assert problems == [
        f"inline.toml:{at('repeat')}: [defaults]: key 'repeat': is zero; expected a duration such as \"90s\", "
        '"5m" or "2h30m" greater than zero',
        f"inline.toml:{fresh}: event 'first': key 'outputs[1].fresh': got the string \"yes\"; expected true or false",
        f"inline.toml:{at('env =')}: event 'second': key 'env.A': got the boolean true; expected a string",
        f"inline.toml:{at('latest =')}: event 'second': key 'window.latest': equals earliest (06:00); expected a "
        "different time (a latest before earliest spans midnight)",
        f"inline.toml:{at('[[event.outputs]]')}: event 'second': key 'outputs[0].path': missing; expected the file "
        "(or glob) to check",
        f"inline.toml:{at('requires =')}: event 'third': key 'requires': dependency cycle third -> third through "
        "requires and on_success; expected no cycle: remove one of these links",
    ]


keys = st.text(alphabet="abZ_-1 .", min_size=1, max_size=4)
leaves = st.one_of(st.integers(), st.text(alphabet="x\n\"'", max_size=3), st.lists(st.integers(), max_size=2))
documents = st.recursive(
    st.dictionaries(keys, leaves, max_size=3),
    lambda inner: st.dictionaries(keys, st.one_of(leaves, inner, st.lists(inner, min_size=1, max_size=2)), max_size=3),
    max_leaves=12,
)


def key_paths(value: object, path: tuple[str | int, ...] = ()) -> Iterable[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from key_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from key_paths(item, (*path, index))


@settings(max_examples=150, deadline=None)
@given(documents)
def test_positions_find_every_key_tomli_w_writes(document: dict[str, object]) -> None:
    text = tomli_w.dumps(document)
    lines = text.splitlines()
    positions = Positions(text)
    for path in key_paths(document):
        line = positions.line_of(path)
        assert line is not None, (path, text)
        key = str(path[-1])
        assert key in lines[line - 1] or json.dumps(key) in lines[line - 1], (path, line, text)
