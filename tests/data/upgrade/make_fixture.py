"""Make tests/data/upgrade/<name>.db: a database written by an earlier evman, for the upgrade test.

Run it with the EARLIER code on the path, not this checkout's (it must import what that release
had), e.g. for the fixture in the repository (made from commit c18d7f1, schema 1):

    git worktree add /tmp/evman-prev c18d7f1
    cd /tmp/evman-prev && uv sync
    uv run python /path/to/this/tests/data/upgrade/make_fixture.py /path/to/tests/data/upgrade/schema1.db
    git worktree remove /tmp/evman-prev

It drives that release's real engine on a fake clock through two days of a small workload:
commands that succeed and fail (history, retries, output tails), a callable, an alert paged to
an HTTP receiver on 127.0.0.1 (deliveries), one acknowledged and one resolved, requests of every
verb (handled), one request still queued, and a held event. The last lines print the row counts
and the commit, which the upgrade test checks against (tests/store/test_upgrade.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

from evman.engine.clock import FakeClock
from evman.engine.definitions import catalog, parse_definitions
from evman.engine.engine import Engine
from evman.engine.paging.notifier import Notifier
from evman.engine.store import Store

try:
    from evman.engine.store import open_store
except ImportError:  # the earlier release this script runs with opened a database as Store(PATH)
    from evman.engine.store import Store as open_store  # type: ignore[assignment]

START = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)

DEFS = """
[defaults]
timezone = "UTC"
driver = "ops"

[routes]
ops = ["json://127.0.0.1:{port}/"]

[[event]]
name = "fetch"
run = "sh -c 'echo fetched; echo items >&2'"
schedule = "every 6 hours"
on_success = ["build"]

[[event]]
name = "build"
shell = "echo building && test -e {flag}"
on_failure = {{ retries = 1, backoff = "1m" }}

[[event]]
name = "report"
run = "true"
schedule = "30 7 * * *"
requires = "success(build, \\"1d\\") or failure(build)"
window = {{ earliest = "07:00", latest = "09:00" }}

[[event]]
name = "ping"
http = {{ url = "http://127.0.0.1:{port}/ping", method = "POST", expect = 200 }}
schedule = "every 12 hours"

[[event]]
name = "check"
run = "sh -c 'echo disk at 97% >&2; exit 3'"
schedule = "0 20 * * *"

[[event]]
name = "parked"
run = "true"
schedule = "every 3 hours"
"""


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def main(out: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    Thread(target=server.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="evman-fixture-"))
    flag = work / "build.ok"
    db = work / "evman.db"
    clock = FakeClock(START)
    store = open_store(db)
    text = textwrap.dedent(DEFS).format(port=server.server_address[1], flag=flag)
    defs = parse_definitions(text, source=str(work / "defs.toml"), base_dir=work, known_events=[])
    catalog.save(store, defs, now=clock.now())
    engine = Engine(store, clock=clock, logs_dir=work / "evman.db.logs")
    engine.start()
    notifier = Notifier(db, clock, throttle_s=0)
    try:
        drive(engine, store, notifier, clock, flag)
    finally:
        engine.executors.shutdown(wait_s=5)
        notifier.store.close()
        store.close()
        server.shutdown()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, out)
    out.chmod(0o600)
    describe(out)
    shutil.rmtree(work)


def drive(engine: Engine, store: Store, notifier: Notifier, clock: FakeClock, flag: Path) -> None:
    """Two days, a minute at a time where something is due; build fails on the first day."""
    store.add_request("hold", "parked", requested_by="fixture", now=clock.now())
    for minute in range(2 * 24 * 60):
        if minute == 24 * 60:
            flag.touch()  # build succeeds from the second day: its failed alert resolves
        if minute == 60:
            store.add_request("ack", "build", requested_by="fixture", now=clock.now())
        if minute == 20 * 60:
            store.add_request("trigger", "report", requested_by="fixture", dedupe_key="nightly-1", now=clock.now())
        if minute == 30 * 60:
            store.add_request("trigger", "fetch", requested_by="fixture", now=clock.now())
            store.add_request("restart", "build", requested_by="fixture", now=clock.now())
        engine.settle(clock.now(), timeout_s=20)
        notifier.run_once(clock.now())
        clock.advance(timedelta(minutes=1))
    engine.settle(clock.now(), timeout_s=20)
    store.add_request("trigger", "fetch", requested_by="fixture", dedupe_key="left-queued", now=clock.now())


def describe(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("events", "runs", "alerts", "deliveries", "requests", "settings", "routes")
        }
        states = dict(conn.execute("SELECT state, count(*) FROM runs GROUP BY state").fetchall())
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    print(json.dumps({"commit": commit, "user_version": version, "rows": counts, "run_states": states}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
