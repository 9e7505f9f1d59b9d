"""Paging the driver: alerts delivered to real HTTP and SMTP receivers, retries and the
delivery alert, repeat paging and ack, escalation, de-duplication, quiet hours and digests,
masked secrets. Time moves only on a FakeClock, except in the one end-to-end thread test."""

from __future__ import annotations

import json
import logging
import shlex
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evman.engine.clock import FakeClock, SystemClock, iso
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier, masked, start_notifier
from evman.engine.paging.rules import quiet_end
from evman.engine.store import Store, open_store
from tests.outside import found
from tests.receivers import HttpReceiver, SmtpReceiver, text_of

pytestmark = pytest.mark.backends


HOOK_PASSWORD = "hook-s3cret"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def notifier_factory(db_path: Path, clock: FakeClock) -> Iterator[Callable[..., Notifier]]:
    """make(**options) -> a Notifier on its own connection to the test database (not started)."""
    made: list[Notifier] = []

    def make(**options: Any) -> Notifier:
        options.setdefault("timeout_s", 2.0)
        options.setdefault("attempt_cap_s", 5.0)
        options.setdefault("throttle_s", 0.0)  # Apprise waits 5.5 s between two mails to one server
        notifier = Notifier(db_path, clock, **options)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.stop()


def load_text(store: Store, text: str, base_dir: Path, now: datetime) -> None:
    """Definitions into the store, as `evman load` puts them."""
    defs = parse_definitions(
        textwrap.dedent(text), source=str(base_dir / "defs.toml"), base_dir=base_dir, known_events=store.event_names()
    )
    catalog.save(store, defs, now=now)


def load(store: Store, tmp_path: Path, clock: FakeClock, text: str) -> None:
    load_text(store, text, tmp_path, clock.now())


def add_alert(
    store: Store,
    kind: str,
    event: str,
    at: datetime,
    *,
    route: str | None = None,
    message: str | None = None,
    status: str = "open",
) -> int:
    """An alert row as the engine writes it (followups.raise_alert)."""
    with store.transaction():
        alert_id = store.value(
            "INSERT INTO alerts (kind, event, route, message, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, event, route, message or f"{event} {kind}.", status, iso(at), iso(at)),
        )
    return int(alert_id)


def ask(engine: Engine, verb: str, target: str, *, by: str = "alice") -> dict[str, Any]:
    """A request written the way another program writes it (its own connection), then a tick."""
    assert engine.store.target is not None
    other = open_store(engine.store.target)
    try:
        request_id = other.add_request(verb, target, requested_by=by)
    finally:
        other.close()
    engine.settle()
    row = engine.store.request(request_id)
    assert row is not None and row["outcome"] == "ok", row
    return row


def deliveries(store: Store, alert_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM deliveries" + (" WHERE alert_id = ?" if alert_id else "") + " ORDER BY id"
    return store.dicts(sql, (alert_id,) if alert_id else ())


def titles(receiver: HttpReceiver) -> list[str]:
    return [post.json["title"] for post in receiver.posts]


def step(notifier: Notifier, clock: FakeClock, delta: timedelta = timedelta(0)) -> list[Any]:
    clock.advance(delta)
    return notifier.run_once(clock.now())


def routes_toml(http: HttpReceiver, **extra: str) -> str:
    lines = [f'ops = ["{http.url("/ops")}"]']
    lines += [f"{name} = {value}" for name, value in extra.items()]
    return "\n".join(lines)


def simple_defs(routes: str, *, defaults: str = "") -> str:
    return f"""
        [defaults]
        timezone = "UTC"
        driver = "ops"
        {defaults}
        [routes]
        {routes}
        [[event]]
        name = "nightly"
        run = "true"
    """


# ---------------------------------------------------------------- a real failure, both receivers

REPORT_DEFS = """
    [defaults]
    timezone = "Europe/London"
    driver = "ops"
    [routes]
    ops = ["{mail}", "{hook}"]
    [[event]]
    name = "nightly-report"
    shell = "echo building report; echo step 2 of 2; echo 'disk full' >&2; exit 3"
    runtime = {{ min = "1s", max = "5m" }}
"""


def test_failed_run_reaches_each_receiver_once_with_title_and_body(
    engine_factory: Callable[..., Engine],
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    hook = http.url("/hook", user="evman", password=HOOK_PASSWORD)
    engine = engine_factory(REPORT_DEFS.format(mail=smtp.url(), hook=hook))
    ask(engine, "trigger", "nightly-report")
    [alert] = store.alerts()
    assert alert["kind"] == "failed"

    attempts = notifier_factory().run_once(clock.now())

    assert sorted(a.outcome for a in attempts) == ["sent", "sent"]
    assert len(http.posts) == 1 and len(smtp.messages) == 1
    post, mail = http.posts[0].json, smtp.messages[0]
    assert post["title"] == mail["Subject"] == "[evman] failed: nightly-report"
    assert post["type"] == "failure"
    body = text_of(mail)
    for part in (
        "nightly-report failed",
        "exit code 3",
        "2026-01-05 00:00:01 GMT",
        "2026-01-05 00:00:01 UTC",
        "trigger: trigger",
        "normal 1s to 5m",
        "disk full",
        "step 2 of 2",
        f"evman ack alert:{alert['id']} --db {shlex.quote(store.url)}",  # a URL's ? and & quoted
    ):
        assert part in body, f"{part!r} not in the email:\n{body}"
    chat = post["message"]
    assert "exit code 3" in chat and "disk full" in chat and f"evman ack alert:{alert['id']}" in chat
    assert len(chat.splitlines()) <= 5 < len(body.splitlines())
    rows = deliveries(store, alert["id"])
    assert [(r["route"], r["outcome"], r["page"]) for r in rows] == [("ops", "sent", 1)] * 2
    after = found(store.alert(alert["id"]))
    assert after["pages"] == 1 and after["delivered_at"] == iso(clock.now())
    assert after["next_attempt_at"] == iso(clock.now() + timedelta(minutes=30))  # the reminder

    assert step(notifier_factory(), clock, timedelta(minutes=1)) == []  # nothing more is due
    assert len(http.posts) == 1 and len(smtp.messages) == 1


def test_second_failure_while_open_does_not_page_again(
    engine_factory: Callable[..., Engine],
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    engine = engine_factory(REPORT_DEFS.format(mail=smtp.url(), hook=http.url()))
    notifier = notifier_factory()
    ask(engine, "trigger", "nightly-report")
    step(notifier, clock)
    clock.advance(timedelta(minutes=5))
    ask(engine, "trigger", "nightly-report")

    [alert] = store.alerts()
    assert alert["count"] == 2
    assert step(notifier, clock, timedelta(minutes=1)) == []
    assert len(http.posts) == 1 and len(smtp.messages) == 1
    # the one reminder comes at its time, 30m after the first page, not earlier and not twice
    assert step(notifier, clock, timedelta(minutes=23, seconds=59)) == []
    assert len(step(notifier, clock, timedelta(seconds=1))) == 2
    assert len(http.posts) == 2 and "2 times since" in text_of(smtp.messages[1])


def test_recovery_notice_goes_out_and_ends_the_reminders(
    engine_factory: Callable[..., Engine],
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    http: HttpReceiver,
) -> None:
    flag = tmp_path / "fixed"
    engine = engine_factory(f"""
        [defaults]
        timezone = "UTC"
        driver = "ops"
        [routes]
        ops = ["{http.url()}"]
        [[event]]
        name = "flaky"
        shell = "test -e {flag}"
    """)
    notifier = notifier_factory()
    ask(engine, "trigger", "flaky")
    step(notifier, clock)
    flag.touch()
    clock.advance(timedelta(minutes=10))
    ask(engine, "trigger", "flaky")
    step(notifier, clock)
    assert titles(http) == ["[evman] failed: flaky", "[evman] recovered: flaky"]
    assert "evman ack" not in http.posts[1].json["message"]
    step(notifier, clock, timedelta(hours=3))
    assert len(http.posts) == 2
    assert {a["kind"]: a["pending"] for a in store.alerts()} == {"failed": 0, "recovered": 0}


# ---------------------------------------------------------------- a dead target


def test_stopped_receiver_is_retried_with_backoff_then_delivered_and_nothing_is_lost(
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    load(store, tmp_path, clock, simple_defs(f'ops = ["{smtp.url()}"]\nhooks = ["{http.url("/hooks")}"]'))
    failed = add_alert(store, "failed", "nightly", clock.now(), route="hooks")
    late = add_alert(store, "late", "other", clock.now(), route="hooks")
    http.stop()
    notifier = notifier_factory(max_failures=3)

    outcomes = [[a.outcome for a in step(notifier, clock)]]
    for wait_s in (29, 1, 59, 1):  # due again after 30 s, then after 60 s more
        outcomes.append([a.outcome for a in step(notifier, clock, timedelta(seconds=wait_s))])
    assert outcomes == [["failed"] * 2, [], ["failed"] * 2, [], ["failed"] * 2]

    # three failures: a delivery alert per event goes to the fallback route ([defaults].driver)
    delivery = [a for a in store.alerts() if a["kind"] == "delivery"]
    assert {a["event"] for a in delivery} == {"nightly", "other"}
    assert all(a["route"] == "ops" for a in delivery)
    step(notifier, clock)
    assert sorted(m["Subject"] for m in smtp.messages) == ["[evman] delivery: nightly", "[evman] delivery: other"]
    assert f"alert:{failed}" in text_of(smtp.messages[0]) + text_of(smtp.messages[1])

    http.start()  # the same port again
    step(notifier, clock, timedelta(seconds=119))
    assert http.posts == []
    step(notifier, clock, timedelta(seconds=1))
    assert sorted(titles(http)) == ["[evman] failed: nightly", "[evman] late: other"]
    rows = deliveries(store, failed)
    assert [r["outcome"] for r in rows] == ["failed"] * 3 + ["sent"]
    assert all(r["error"] for r in rows[:3]) and rows[3]["error"] is None
    assert found(store.alert(failed))["delivered_at"] and found(store.alert(late))["pending"] == 0
    assert {a["status"] for a in store.alerts() if a["kind"] == "delivery"} == {"resolved"}


def test_a_hanging_target_is_bounded_and_does_not_hold_up_the_others(
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    load(store, tmp_path, clock, simple_defs(f'ops = ["{http.url()}", "{smtp.url()}"]'))
    alert = add_alert(store, "failed", "nightly", clock.now())
    http.delay_s = 10.0
    notifier = notifier_factory(timeout_s=0.3, attempt_cap_s=1.0)

    started = time.monotonic()
    attempts = notifier.run_once(clock.now())
    assert time.monotonic() - started < 5.0  # bounded by attempt_cap_s, not the target's 10 s hang
    assert sorted((a.target or "").split(":")[0] + " " + a.outcome for a in attempts) == ["json failed", "mailto sent"]
    assert len(smtp.messages) == 1
    # the retry goes to the hanging target only: the mail target has this page already
    http.delay_s = 0.0
    step(notifier, clock, timedelta(seconds=30))
    assert len(http.posts) == 1 and len(smtp.messages) == 1
    assert found(store.alert(alert))["pages"] == 1


# ---------------------------------------------------------------- repeat, ack, escalation


def test_reminders_every_repeat_until_acknowledged(
    engine_factory: Callable[..., Engine],
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    http: HttpReceiver,
) -> None:
    engine = engine_factory(simple_defs(routes_toml(http), defaults='repeat = "30m"'))
    alert = add_alert(store, "overdue", "nightly", clock.now())
    notifier = notifier_factory()
    step(notifier, clock)
    assert step(notifier, clock, timedelta(minutes=29, seconds=59)) == []
    step(notifier, clock, timedelta(seconds=1))
    step(notifier, clock, timedelta(minutes=30))
    assert len(http.posts) == 3 and "reminder 3" in http.posts[2].json["message"]

    ask(engine, "ack", f"alert:{alert}", by="alice")
    for _ in range(4):
        assert step(notifier, clock, timedelta(minutes=30)) == []
    assert len(http.posts) == 3
    row = found(store.alert(alert))
    assert row["acknowledged_by"].startswith("alice") and (row["pending"], row["pages"]) == (0, 3)


def test_reminders_stop_after_max_repeats_and_informational_kinds_do_not_repeat(
    notifier_factory: Callable[..., Notifier], store: Store, clock: FakeClock, tmp_path: Path, http: HttpReceiver
) -> None:
    load(store, tmp_path, clock, simple_defs(routes_toml(http), defaults='repeat = "10m"\nmax_repeats = 2'))
    add_alert(store, "missed", "nightly", clock.now())
    add_alert(store, "overrun", "other", clock.now())
    notifier = notifier_factory()
    step(notifier, clock)
    for _ in range(6):
        step(notifier, clock, timedelta(minutes=10))
    assert sorted(titles(http)) == ["[evman] missed: nightly"] * 3 + ["[evman] overrun: other"]


ESCALATING = """
    ops = {{ urls = ["{ops}"], escalate_to = "lead", escalate_after = "20m" }}
    lead = ["{lead}"]
"""


@pytest.mark.parametrize("acknowledged", [False, True], ids=["nobody-acks", "acked-in-time"])
def test_escalation_reaches_the_second_route_only_when_nobody_acknowledged_in_time(
    acknowledged: bool,
    engine_factory: Callable[..., Engine],
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    http: HttpReceiver,
) -> None:
    engine = engine_factory(simple_defs(ESCALATING.format(ops=http.url("/ops"), lead=http.url("/lead"))))
    alert = add_alert(store, "failed", "nightly", clock.now())
    notifier = notifier_factory()
    step(notifier, clock)
    clock.advance(timedelta(minutes=10))
    if acknowledged:
        ask(engine, "ack", f"alert:{alert}", by="bob")
    step(notifier, clock)
    assert step(notifier, clock, timedelta(minutes=9, seconds=59)) == []

    def to_lead() -> int:
        return sum(p.path == "/lead" for p in http.posts)

    assert to_lead() == 0
    step(notifier, clock, timedelta(seconds=1))  # 20 minutes after the alert was raised
    assert to_lead() == (0 if acknowledged else 1)
    step(notifier, clock, timedelta(hours=2))
    if acknowledged:
        assert to_lead() == 0 and [p.path for p in http.posts] == ["/ops"]
        assert found(store.alert(alert))["escalated_at"] is None
    else:
        lead = [p for p in http.posts if p.path == "/lead"]
        assert len(lead) > 1 and "escalated to lead" in lead[0].json["message"]
        assert found(store.alert(alert))["escalated_at"] == iso(datetime(2026, 1, 5, 0, 20, 1, tzinfo=UTC))


def test_a_failing_reminder_is_retried_with_backoff_not_at_once(
    notifier_factory: Callable[..., Notifier], store: Store, clock: FakeClock, tmp_path: Path, http: HttpReceiver
) -> None:
    load(store, tmp_path, clock, simple_defs(routes_toml(http)))
    alert = add_alert(store, "failed", "nightly", clock.now())
    notifier = notifier_factory()
    step(notifier, clock)
    http.stop()
    assert [a.outcome for a in step(notifier, clock, timedelta(minutes=30))] == ["failed"]
    assert step(notifier, clock, timedelta(seconds=29)) == []
    assert [a.outcome for a in step(notifier, clock, timedelta(seconds=1))] == ["failed"]
    http.start()
    assert step(notifier, clock, timedelta(seconds=59)) == []
    assert [a.outcome for a in step(notifier, clock, timedelta(seconds=1))] == ["sent"]
    row = found(store.alert(alert))
    assert (row["pages"], row["failures"]) == (2, 0)
    assert row["next_attempt_at"] == iso(clock.now() + timedelta(minutes=30))


def test_an_alert_without_a_route_is_a_recorded_failure_not_a_crash(
    notifier_factory: Callable[..., Notifier], store: Store, clock: FakeClock, tmp_path: Path, http: HttpReceiver
) -> None:
    load(store, tmp_path, clock, simple_defs(routes_toml(http)).replace('driver = "ops"', ""))
    alert = add_alert(store, "failed", "nightly", clock.now())
    [attempt] = notifier_factory().run_once(clock.now())
    assert attempt.outcome == "failed" and "no route" in (attempt.error or "")
    [row] = deliveries(store, alert)
    assert row["outcome"] == "failed" and "[defaults] has no driver" in row["error"]
    assert found(store.alert(alert))["pending"] == 1


def test_a_route_from_an_apprise_config_file_pages_only_the_tagged_entries(
    notifier_factory: Callable[..., Notifier], store: Store, clock: FakeClock, tmp_path: Path, http: HttpReceiver
) -> None:
    (tmp_path / "apprise.txt").write_text(
        f"oncall={http.url('/tagged')}\nteam={http.url('/untagged')}\n", encoding="utf-8"
    )
    load(store, tmp_path, clock, simple_defs('ops = { config = "apprise.txt", tags = ["oncall"] }'))
    add_alert(store, "failed", "nightly", clock.now())
    notifier_factory().run_once(clock.now())
    assert [p.path for p in http.posts] == ["/tagged"]


# ---------------------------------------------------------------- quiet hours


def test_quiet_hours_hold_notices_and_send_them_as_one_digest(
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    http: HttpReceiver,
    smtp: SmtpReceiver,
) -> None:
    load(
        store,
        tmp_path,
        clock,
        f"""
        [defaults]
        timezone = "Europe/London"
        driver = "ops"
        [routes]
        ops = {{ urls = ["{http.url()}", "{smtp.url()}"], quiet = {{ from = "22:00", to = "07:00", except = ["failed"] }} }}
        [[event]]
        name = "nightly"
        run = "true"
    """,
    )
    clock.set(datetime(2026, 1, 5, 23, 10, tzinfo=UTC))  # GMT in January: 23:10 local
    late = add_alert(store, "late", "feeds", clock.now())
    overrun = add_alert(store, "overrun", "backup", clock.now())
    failed = add_alert(store, "failed", "nightly", clock.now())
    notifier = notifier_factory()

    held = step(notifier, clock)
    assert (
        sorted((a.alert_ids, a.outcome) for a in held)
        == [  # one per target
            ((late,), "held")
        ]
        * 2
        + [((overrun,), "held")] * 2
        + [((failed,), "sent")] * 2
    )
    assert titles(http) == ["[evman] failed: nightly"]  # except = ["failed"] goes through
    assert found(store.alert(late))["next_attempt_at"] == iso(datetime(2026, 1, 6, 7, 0, tzinfo=UTC))
    clock.set(datetime(2026, 1, 6, 6, 59, 59, tzinfo=UTC))
    notifier.run_once(clock.now())  # only the reminder of the failed alert, not the held ones
    assert titles(http) == ["[evman] failed: nightly"] * 2 and len(smtp.messages) == 2

    digest = step(notifier, clock, timedelta(seconds=1))
    assert {a.digest for a in digest} == {True} and len(digest) == 2
    assert titles(http)[2] == "[evman] digest: 2 notices held during quiet hours"
    mail = text_of(smtp.messages[2])
    assert smtp.messages[2]["Subject"] == "[evman] digest: 2 notices held during quiet hours"
    for part in (
        "late: feeds",
        "overrun: backup",
        f"evman ack alert:{late}",
        f"evman ack alert:{overrun}",
        "22:00-07:00",
    ):
        assert part in mail
    assert len(http.posts) == 3 and len(smtp.messages) == 3
    assert [r["outcome"] for r in deliveries(store, late)] == ["sent", "sent"]
    assert found(store.alert(late))["held_since"] is None and found(store.alert(late))["pending"] == 0


def test_a_quiet_escalation_route_holds_its_notice_but_not_the_reminders_to_the_first(
    notifier_factory: Callable[..., Notifier], store: Store, clock: FakeClock, tmp_path: Path, http: HttpReceiver
) -> None:
    load(
        store,
        tmp_path,
        clock,
        simple_defs(
            f"""
        ops = {{ urls = ["{http.url("/ops")}"], escalate_to = "lead", escalate_after = "20m" }}
        lead = {{ urls = ["{http.url("/lead")}"], quiet = {{ from = "22:00", to = "07:00" }} }}
    """,
            defaults="max_repeats = 20",
        ),
    )
    clock.set(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    add_alert(store, "failed", "nightly", clock.now())
    notifier = notifier_factory()
    seen: dict[str, list[str]] = {"/ops": [], "/lead": []}
    while clock.now() < datetime(2026, 1, 5, 7, 30, tzinfo=UTC):
        before = len(http.posts)
        notifier.run_once(clock.now())
        for post in http.posts[before:]:
            seen[post.path].append(clock.now().strftime("%H:%M"))
        clock.advance(timedelta(minutes=10))
    # ops: the first page, the escalation page at 02:20, then every 30 minutes
    assert seen["/ops"] == [
        "02:00",
        "02:20",
        "02:50",
        "03:20",
        "03:50",
        "04:20",
        "04:50",
        "05:20",
        "05:50",
        "06:20",
        "06:50",
        "07:20",
    ]
    # lead: held from the escalation until its quiet hours end, then paged like ops
    assert seen["/lead"] == ["07:00", "07:20"]
    held = http.posts[[p.path for p in http.posts].index("/lead")].json["message"]
    assert "escalated to lead" in held


@pytest.mark.parametrize(
    ("local", "expected"),
    [("21:59", None), ("22:00", "2026-01-06 07:00"), ("03:00", "2026-01-05 07:00"), ("07:00", None)],
)
def test_quiet_end_spans_midnight(local: str, expected: str | None) -> None:
    hour, minute = map(int, local.split(":"))
    now = datetime(2026, 1, 5, hour, minute, tzinfo=UTC)
    end = quiet_end("22:00", "07:00", now, "Europe/London")
    assert (end and end.strftime("%Y-%m-%d %H:%M")) == expected


# ---------------------------------------------------------------- secrets


def test_masked_urls_never_show_the_password(
    notifier_factory: Callable[..., Notifier],
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    db_path: Path,
    http: HttpReceiver,
    smtp: SmtpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from evman.console.cli.main import main

    hook = http.url("/", user="evman", password=HOOK_PASSWORD)
    dead = "json://evman:dead-s3cret@127.0.0.1:9/"
    load(store, tmp_path, clock, simple_defs(f'ops = ["{hook}", "{smtp.url()}", "{dead}"]'))
    add_alert(store, "failed", "nightly", clock.now())
    caplog.set_level(logging.DEBUG, logger="apprise")
    caplog.set_level(logging.DEBUG, logger="evman")
    attempts = notifier_factory().run_once(clock.now())

    secrets = (HOOK_PASSWORD, smtp.password, "dead-s3cret")
    assert sorted(a.outcome for a in attempts) == ["failed", "sent", "sent"]
    assert smtp.logins == [smtp.user]  # the real password did reach the server
    shown = json.dumps(deliveries(store)) + caplog.text
    cli = CliRunner().invoke(main, ["alerts", "--json", "--db", str(db_path)])
    assert cli.exit_code == 0, cli.output
    shown += cli.output
    assert "****" in cli.output and "127.0.0.1" in cli.output
    for secret in secrets:
        assert secret not in shown
    assert masked(hook) == f"json://evman:****@127.0.0.1:{http.port}/"
    assert smtp.password not in masked(smtp.url())


# ---------------------------------------------------------------- the real thread


def test_notifier_thread_pages_a_real_failure_end_to_end(tmp_path: Path, http: HttpReceiver) -> None:
    path = tmp_path / "live.db"
    store = open_store(path)
    clock = SystemClock()
    load_text(
        store,
        f"""
        [defaults]
        timezone = "UTC"
        driver = "ops"
        [routes]
        ops = ["{http.url()}"]
        [[event]]
        name = "broken"
        run = "false"
    """,
        tmp_path,
        clock.now(),
    )
    engine = Engine(store, clock=clock, tick_s=0.05)
    engine.start()
    notifier = start_notifier(path, engine, poll_s=30.0)  # only the engine's wake-up can be in time
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    try:
        other = open_store(path)
        other.add_request("trigger", "broken", requested_by="test")
        other.close()
        assert http.wait_for(1, timeout_s=10), "no page arrived"
        assert http.posts[0].json["title"] == "[evman] failed: broken"
    finally:
        engine.stop()
        thread.join(10)
        notifier.stop()
        store.close()


def test_a_clean_stop_sends_what_the_last_tick_raised(
    store: Store, clock: FakeClock, tmp_path: Path, db_path: Path, http: HttpReceiver
) -> None:
    load(store, tmp_path, clock, simple_defs(routes_toml(http)))
    notifier = Notifier(db_path, clock, poll_s=30.0).start()
    time.sleep(0.1)  # the thread has looked, found nothing, and sleeps
    add_alert(store, "failed", "nightly", clock.now())  # as the engine's last tick at SIGTERM would
    notifier.stop()
    assert titles(http) == ["[evman] failed: nightly"]
    assert [r["outcome"] for r in deliveries(store)] == ["sent"]
