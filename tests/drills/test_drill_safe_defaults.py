"""Safe by default: no shell unless the event says `shell`; request rows and crontab imports are
never spliced into a shell string; the database and logs are private (0600, logs in
`<db>.logs/`); a database others can write is refused; URLs with credentials are masked
wherever they are shown or logged, and written as given only by `export --include-secrets`;
`user` is refused at load unless evman runs as root."""

from __future__ import annotations

import json
import os
import signal
import stat
import textwrap
import time
from pathlib import Path

import pytest

from evman.engine.clock import FakeClock
from evman.engine.definitions import DefinitionsError, parse_definitions
from evman.engine.store import Store
from tests.drills.common import cli, connect, evman, insert_request, rows, start_engine, wait_until
from tests.outside import found
from tests.receivers import HttpReceiver


def _no_pwned(*folders: Path) -> None:
    for folder in folders:
        made = [p.name for p in folder.iterdir() if p.name.startswith("PWNED")]
        assert not made, f"a shell ran what it should only have passed along: {made}"


def _tail(store: Store, event: str) -> str:
    row = store.execute(
        "SELECT output_tail, state FROM runs WHERE event = ? ORDER BY id DESC LIMIT 1", (event,)
    ).fetchone()
    assert row is not None, f"no run of {event}"
    return str(row["output_tail"] or "")


def _trigger_and_settle(engine, db_path: Path, clock: FakeClock, *events: str, by: str = "drill") -> None:
    conn = connect(db_path)
    for event in events:
        insert_request(conn, "trigger", event, by=by)
    conn.close()
    engine.settle(clock.now())


def test_run_is_argv_never_a_shell(
    engine_factory, store: Store, clock: FakeClock, tmp_path: Path, db_path: Path
) -> None:
    line = "echo a; touch PWNED1 $(touch PWNED2) `touch PWNED3` | cat > PWNED4 && touch PWNED5"
    engine = engine_factory(f"""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "literal"
        run = {json.dumps(line)}
        [[event]]
        name = "literal-list"
        run = ["echo", "$(touch PWNED6)", ";", "touch PWNED7"]
        [[event]]
        name = "with-shell"
        shell = "echo $((6 * 7))"
    """)
    _trigger_and_settle(engine, db_path, clock, "literal", "literal-list", "with-shell")
    assert _tail(store, "literal").strip() == line.removeprefix("echo ")
    assert _tail(store, "literal-list").strip() == "$(touch PWNED6) ; touch PWNED7"
    assert _tail(store, "with-shell").strip() == "42"  # only `shell` means a shell
    _no_pwned(tmp_path)


def test_request_values_are_never_spliced_into_a_shell(
    engine_factory, store: Store, clock: FakeClock, tmp_path: Path, db_path: Path
) -> None:
    engine = engine_factory("""
        [defaults]
        timezone = "UTC"
        [[event]]
        name = "show-env"
        shell = "env | grep ^EVMAN_ | sort"
        on_failure = { retries = 1, backoff = "0s", prepare = "echo preparing $EVMAN_EVENT" }
    """)
    conn = connect(db_path)
    hostile = "$(touch PWNED1); touch PWNED2 `touch PWNED3`"
    insert_request(conn, "trigger", "show-env; touch PWNED4", by=hostile)
    insert_request(
        conn,
        "trigger",
        "show-env",
        by=hostile,
        dedupe_key="$(touch PWNED5)",
        args={"force": True, "note": "$(touch PWNED6)"},
    )
    insert_request(conn, "hold", "$(touch PWNED7)", by=hostile)
    insert_request(conn, "restart", "run:1; touch PWNED8", by=hostile)
    insert_request(conn, "ack", "alert:`touch PWNED9`", by=hostile)
    with conn:
        conn.execute(
            "INSERT INTO requests (verb, target, requested_by) VALUES (?, ?, ?)",
            ("trigger$(touch PWNED10)", "show-env", hostile),
        )
    conn.close()
    engine.settle(clock.now())
    outcomes = [r["outcome"] for r in rows(db_path, "SELECT outcome FROM requests ORDER BY id")]
    assert outcomes[1] == "ok" and all(o for o in outcomes), outcomes
    assert "unknown event" in outcomes[0] and "unknown verb" in outcomes[5]
    out = _tail(store, "show-env")
    assert "EVMAN_EVENT=show-env" in out and "PWNED" not in out  # the run's env names no request value
    _no_pwned(tmp_path)


def test_crontab_values_are_never_spliced_into_a_shell(
    engine_factory, store: Store, clock: FakeClock, tmp_path: Path, db_path: Path
) -> None:
    crontab = tmp_path / "jobs.cron"
    crontab.write_text(
        textwrap.dedent("""\
        GREETING=$(touch PWNED1) `touch PWNED2`
        # evman: name=say
        * * * * * printf '\\%s|' "$GREETING"; cat%$(touch PWNED3)%`touch PWNED4`
        """)
    )
    engine = engine_factory()
    done = cli("import-crontab", str(crontab), "--db", str(db_path))
    assert done.returncode == 0, done.stderr
    spec = json.loads(found(store.event_row("say"))["spec"])
    assert spec["shell"] == "printf '%s|' \"$GREETING\"; cat"  # the command as written, nothing added
    assert spec["env"] == {"GREETING": "$(touch PWNED1) `touch PWNED2`"}  # a value, as cron passes it
    assert spec["stdin"] == "$(touch PWNED3)\n`touch PWNED4`"  # % lines: data on stdin
    engine.tick(clock.now())  # notice the imported definitions
    _trigger_and_settle(engine, db_path, clock, "say")
    out = _tail(store, "say")
    assert out.startswith("$(touch PWNED1) `touch PWNED2`|$(touch PWNED3)\n`touch PWNED4`"), out
    _no_pwned(tmp_path, Path(spec["cwd"]))


def test_a_system_crontab_user_field_becomes_user_not_su(tmp_path: Path) -> None:
    from evman.engine.crontab import parse_crontab

    imported = parse_crontab("17 * * * * nobody echo $(id -u) >/tmp/x\n", source="/etc/cron.d/x", system=True)
    [event] = imported.events
    assert event["user"] == "nobody" and event["shell"] == "echo $(id -u) >/tmp/x"


# -- files ---------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_logs_are_private_whatever_the_umask(tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text('[defaults]\ntimezone = "UTC"\n[[event]]\nname = "hello"\nrun = "echo hello"\n')
    db = tmp_path / "data" / "private.db"
    db.parent.mkdir()
    old = os.umask(0)  # the children inherit a umask that hides nothing
    try:
        assert evman("load", str(defs), "--db", str(db)).returncode == 0
        engine = start_engine(db, "--tick", "0.2", log=tmp_path / "engine.log")
        try:
            assert evman("trigger", "hello", "--db", str(db)).returncode == 0
            wait_until(
                lambda: (
                    rows(db, "SELECT state FROM runs")[0]["state"] == "succeeded"
                    if rows(db, "SELECT state FROM runs")
                    else False
                ),
                timeout=15,
                what="the run",
            )
            files = {p.name: _mode(p) for p in db.parent.iterdir() if p.is_file()}
            assert files["private.db"] == 0o600
            for side in ("private.db-wal", "private.db-shm"):
                if side in files:
                    assert files[side] == 0o600, (side, oct(files[side]))
            logs = db.parent / "private.db.logs"
            [log] = list(logs.rglob("*.log"))
            assert _mode(log) == 0o600 and log.read_text().strip() == "hello"
            assert _mode(logs) == 0o700 and _mode(log.parent) == 0o700
            assert rows(db, "SELECT log_path FROM runs")[0]["log_path"] == str(log)
        finally:
            engine.send_signal(signal.SIGTERM)
            engine.wait(15)
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode", [0o666, 0o662, 0o620])
def test_a_database_others_can_write_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text('[defaults]\ntimezone = "UTC"\n[[event]]\nname = "a"\nrun = "true"\n')
    db = tmp_path / "shared.db"
    assert cli("load", str(defs), "--db", str(db)).returncode == 0
    db.chmod(mode)
    for argv in (("list",), ("trigger", "a"), ("load", str(defs))):
        done = cli(*argv, "--db", str(db))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "can be written by other users" in done.stderr and f"chmod 600 {db}" in done.stderr
    done = evman("--no-ui", "--db", str(db))
    assert done.returncode == 1 and "can be written by other users" in done.stderr
    assert _mode(db) == mode  # refused, not silently changed


def test_a_database_in_a_shared_sticky_folder_is_fine(tmp_path: Path) -> None:
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    defs = tmp_path / "defs.toml"
    defs.write_text('[defaults]\ntimezone = "UTC"\n[[event]]\nname = "a"\nrun = "true"\n')
    assert cli("load", str(defs), "--db", str(shared / "mine.db")).returncode == 0
    assert cli("list", "--db", str(shared / "mine.db")).returncode == 0
    assert _mode(shared / "mine.db") == 0o600


# -- secrets in URLs -------------------------------------------------------------------------------------

SECRETS = ("s3cret-mail", "pa55word", "t0ken-value", "Bearer-abc123", "hunter2")


def _secret_defs(alert_url: str) -> str:
    return textwrap.dedent(f"""\
        [defaults]
        timezone = "UTC"
        driver = "ops"

        [routes]
        ops = ["{alert_url}", "mailto://evman:s3cret-mail@127.0.0.1:9/?from=evman@example.com&to=ops@example.com"]

        [[event]]
        name = "hook"
        http = {{ url = "http://api:hunter2@127.0.0.1:9/hook", headers = {{ Authorization = "Bearer-abc123" }}, timeout = "1s" }}

        [[event]]
        name = "fails"
        run = "false"
        """)


def test_credentials_are_masked_wherever_shown_and_kept_by_include_secrets(tmp_path: Path) -> None:
    defs = tmp_path / "defs.toml"
    defs.write_text(_secret_defs("json://alerts:pa55word@127.0.0.1:9/?token=t0ken-value"))
    db = tmp_path / "secrets.db"
    loaded = cli("load", str(defs), "--db", str(db))
    assert loaded.returncode == 0, loaded.stderr
    shown = [
        cli(*argv, "--db", str(db))
        for argv in (("export",), ("list", "--json"), ("show", "hook", "--json"), ("show", "hook"), ("list",))
    ]
    for done in shown:
        assert done.returncode == 0, done.stderr
        for secret in SECRETS:
            assert secret not in done.stdout + done.stderr, (done.args, secret)
    assert "****" in shown[0].stdout
    kept = cli("export", "--include-secrets", "--db", str(db))
    for secret in SECRETS:
        assert secret in kept.stdout, secret
    again = tmp_path / "again.toml"
    again.write_text(kept.stdout)
    exported = parse_definitions(kept.stdout, source="again.toml", base_dir=tmp_path)
    original = parse_definitions(defs.read_text(), source="again.toml", base_dir=tmp_path)
    assert exported.routes == original.routes
    assert {e.name: e for e in exported.events} == {e.name: e for e in original.events}


def test_a_bad_url_with_credentials_is_refused_without_showing_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[routes]\nops = ["nosuchscheme://user:pa55word@host/"]\n[[event]]\nname = "a"\nrun = "true"\n')
    done = cli("validate", str(bad))
    assert done.returncode == 2 and "route" in done.stderr.lower()
    assert "pa55word" not in done.stderr


def test_credentials_never_reach_the_logs_or_the_tables(tmp_path: Path) -> None:
    """A real engine pages through a route with a password and fails an HTTP call to a URL
    with one: the engine's log, the runs and the deliveries show neither."""
    db, log = tmp_path / "secrets.db", tmp_path / "engine.log"
    with HttpReceiver() as receiver:
        defs = tmp_path / "defs.toml"
        defs.write_text(_secret_defs(receiver.url("/alerts", user="alerts", password="pa55word")))
        assert cli("load", str(defs), "--db", str(db)).returncode == 0
        engine = start_engine(db, "--tick", "0.2", log=log)
        try:
            assert cli("trigger", "hook", "--db", str(db)).returncode == 0  # one alert: Apprise
            wait_until(
                lambda: rows(db, "SELECT 1 FROM runs WHERE state = 'failed'"),  # throttles a second
                timeout=20,
                what="the HTTP call to fail",
            )
            wait_until(
                lambda: rows(db, "SELECT 1 FROM deliveries WHERE outcome = 'sent'"),
                timeout=20,
                what="an alert to be delivered",
            )
            assert receiver.wait_for(1)
        finally:
            engine.send_signal(signal.SIGTERM)
            engine.wait(15)
    seen = "\n".join(
        [
            log.read_text(),
            json.dumps(rows(db, "SELECT * FROM runs")),
            json.dumps(rows(db, "SELECT * FROM deliveries")),
            json.dumps(rows(db, "SELECT * FROM alerts")),
            cli("history", "--json", "--db", str(db)).stdout,
            cli("alerts", "--json", "--db", str(db)).stdout,
        ]
    )
    for secret in SECRETS:
        assert secret not in seen, secret
    assert "alerts:****@" in seen or "****" in seen


# -- user ------------------------------------------------------------------------------------------------

USER_DEFS = '[defaults]\ntimezone = "UTC"\n[[event]]\nname = "as-{user}"\nrun = "id -u"\nuser = "{user}"\ncwd = "/"\n'


def test_another_user_is_a_warning_at_load_when_not_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As nobody (the validation asks os.geteuid, which this test answers), another user loads
    with a warning on its line (the engine that runs the event may run as root, on another
    host); one's own name gets none. The engine refuses it, if it is not root either
    (tests/running/test_run_as_user.py)."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    monkeypatch.setattr(os, "geteuid", lambda: nobody.pw_uid)
    defs = parse_definitions(USER_DEFS.format(user="root"), source="defs.toml", base_dir=tmp_path)
    assert defs.events[0].user == "root"
    assert defs.warnings == (
        "defs.toml:6: event 'as-root': key 'user': warning: evman runs commands as another user only "
        "when it runs as root, and this machine's evman runs as 'nobody'; evman checks it on the engine "
        "that runs the event, and a run fails unless that engine runs as root",
    )
    assert parse_definitions(USER_DEFS.format(user="nobody"), source="defs.toml", base_dir=tmp_path).warnings == ()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_another_user_is_a_warning_at_load_in_a_process_that_really_is_not_root(tmp_path: Path) -> None:
    """The same, in a forked child that really drops to nobody before validating."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    parse_definitions(USER_DEFS.format(user="nobody"), source="warm.toml", base_dir=tmp_path)  # warm caches
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, validate, report, leave without cleanup
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                found = parse_definitions(USER_DEFS.format(user="root"), source="defs.toml", base_dir=Path("/"))
                answer = "accepted: " + " | ".join(found.warnings)
            except DefinitionsError as exc:
                answer = str(exc)
        except BaseException as exc:
            answer = f"child failed: {exc!r}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 20
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        assert time.monotonic() < deadline, "the unprivileged child hung"
        time.sleep(0.05)
    answer = os.read(read, 4096).decode()
    os.close(read)
    assert answer.startswith("accepted: ") and "warning: evman runs commands as another user only" in answer, answer


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_as_root_a_command_runs_as_its_user(engine_factory, store: Store, clock: FakeClock, db_path: Path) -> None:
    import pwd

    engine = engine_factory(USER_DEFS.format(user="nobody"))
    _trigger_and_settle(engine, db_path, clock, "as-nobody")
    assert _tail(store, "as-nobody").strip() == str(pwd.getpwnam("nobody").pw_uid)
