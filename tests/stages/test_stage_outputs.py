"""Output checks: a run that exits 0 but fails a check is failed, with the check named as reason."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.store import Store
from tests.stages.stage_helpers import alerts, runs, trigger

pytestmark = pytest.mark.backends


CHECKED = """
    [defaults]
    timezone = "UTC"
    [[event]]
    name = "fetch"
    shell = '{shell}'
    outputs = [ {{ path = "{path}"{check} }} ]
"""


def _run(
    engine_factory,
    clock: FakeClock,
    store: Store,
    *,
    shell: str,
    check: str,
    path: str = "feeds/today.json",
    payload: str | None = None,
) -> dict:
    if payload is not None:  # the command copies it into place: no quoting inside TOML
        shell = "cp payload feeds/today.json"
    engine = engine_factory(CHECKED.format(shell=shell, path=path, check=check))
    if payload is not None:
        row = store.event_row("fetch")  # the engine's view of specs went into the stages
        assert row is not None
        (Path(json.loads(row["spec"])["cwd"]) / "payload").write_text(payload)
    trigger(engine, "fetch", now=clock.now())
    engine.settle(clock.now())
    (run,) = runs(store, "fetch")
    return run


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    (tmp_path / "feeds").mkdir()
    return tmp_path / "feeds"


def test_a_stale_file_fails_a_fresh_check(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    old = feeds / "today.json"
    old.write_text('{"items": []}')
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    clock.set(clock.now().fromtimestamp(time.time(), clock.now().tzinfo))
    run = _run(engine_factory, clock, store, shell="true", check=", fresh = true")
    assert (run["state"], run["exit_code"]) == ("failed", 0)
    assert run["reason"].startswith("output feeds/today.json is stale: modified ")
    assert run["reason"].endswith(", before the run started")
    checks = json.loads(run["checks"])
    assert checks[0]["ok"] is False
    (failed,) = alerts(store, "fetch", "failed")
    assert "is stale" in failed["message"]


def test_a_fresh_file_passes_the_fresh_check(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    clock.set(clock.now().fromtimestamp(time.time() - 1, clock.now().tzinfo))
    run = _run(
        engine_factory,
        clock,
        store,
        shell="",
        payload='{"items": [1]}',
        check=', fresh = true, json = true, contains = "items"',
    )
    assert run["state"] == "succeeded", run["reason"]
    assert json.loads(run["checks"])[0]["ok"] is True


def test_a_missing_file_fails(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(engine_factory, clock, store, shell="true", check="")
    assert (run["state"], run["exit_code"]) == ("failed", 0)
    assert run["reason"] == "output feeds/today.json is missing"


def test_a_glob_with_no_match_is_missing(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(engine_factory, clock, store, shell="touch feeds/a.xml", check="", path="feeds/*.json")
    assert run["reason"] == "output feeds/*.json is missing"


def test_a_regex_miss_fails(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(
        engine_factory,
        clock,
        store,
        shell="",
        payload='{"entries": [], "note": "items"}',
        check=""", contains = '"items"\\s*:'""",
    )
    assert (run["state"], run["exit_code"]) == ("failed", 0)
    assert run["reason"] == 'output feeds/today.json does not contain /"items"\\s*:/'


def test_bad_json_fails(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(engine_factory, clock, store, shell="", payload='{"items": [1,', check=", json = true")
    assert (run["state"], run["exit_code"]) == ("failed", 0)
    assert run["reason"].startswith("output feeds/today.json is not valid JSON: ")


def test_a_file_below_min_size_fails(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(engine_factory, clock, store, shell="printf abc > feeds/today.json", check=", min_size = 10")
    assert (run["state"], run["exit_code"]) == ("failed", 0)
    assert run["reason"] == "output feeds/today.json is 3 bytes, expected at least 10"


def test_a_failed_exit_is_reported_before_any_check(
    engine_factory, clock: FakeClock, store: Store, feeds: Path
) -> None:
    run = _run(engine_factory, clock, store, shell="exit 4", check=", min_size = 10")
    assert (run["state"], run["exit_code"], run["reason"]) == ("failed", 4, "exit code 4")


def test_every_glob_match_is_checked_and_named(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    run = _run(
        engine_factory,
        clock,
        store,
        shell="echo 1234567890 > feeds/a.xml; echo 1 > feeds/b.xml",
        check=", min_size = 5",
        path="feeds/*.xml",
    )
    assert run["reason"] == "output feeds/b.xml is 2 bytes, expected at least 5"
    assert [(c["path"], c["ok"]) for c in json.loads(run["checks"])] == [("feeds/a.xml", True), ("feeds/b.xml", False)]


def test_a_file_older_than_max_age_fails(engine_factory, clock: FakeClock, store: Store, feeds: Path) -> None:
    (feeds / "today.json").write_text("{}")
    clock.set(clock.now().fromtimestamp(time.time() + 7200, clock.now().tzinfo))
    run = _run(engine_factory, clock, store, shell="true", check=', max_age = "1h"')
    assert run["state"] == "failed"
    assert run["reason"].startswith("output feeds/today.json is 7") and run["reason"].endswith(
        " s old, expected at most 3600 s"
    )
