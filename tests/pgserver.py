"""A real PostgreSQL server for tests and drills: initdb + pg_ctl in a temporary folder,
reachable only through a Unix socket there (no TCP port), fsync off, stopped by its pid.

As root (CI, this sandbox) the server runs as `nobody`: initdb refuses to run as root.
Used by the test suite's `pg_server` fixture and by the drill in bench/."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

SUPERUSER = "evman"
SERVER_OPTIONS = (
    "-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=300 -c shared_buffers=64MB -c log_min_messages=warning "
    "-c log_min_error_statement=panic -c log_connections=off -c log_disconnections=off"
)


class PgMissing(RuntimeError):
    """PostgreSQL's server programs are not installed here."""


def find_bin_dir() -> Path:
    """The folder holding pg_ctl and initdb: $PG_BIN, PATH, else the newest /usr/lib/postgresql/*/bin."""
    candidates = [os.environ.get("PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += versions
    for folder in candidates:
        if folder and (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    raise PgMissing(
        "PostgreSQL is not installed (no pg_ctl and initdb on PATH, in $PG_BIN or under "
        "/usr/lib/postgresql/*/bin); `apt-get install postgresql` runs the PostgreSQL "
        "half of the suite"
    )


def _version_key(folder: str) -> tuple[int, ...]:
    parts = Path(folder).parent.name.split(".")
    return tuple(int(p) for p in parts if p.isdigit())


class PgServer:
    """One server in its own folder. start(), then dsn(dbname); stop() ends it by pid."""

    def __init__(self, root: Path | None = None, *, options: str = "") -> None:
        self.bin = find_bin_dir()
        self.root = root or Path(tempfile.mkdtemp(prefix="evman-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "server.log"
        self.run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self.pid: int | None = None
        self.options = options
        """More server settings (-c name=value ...), e.g. shared_preload_libraries for a bench."""

    # -- running as someone initdb accepts -------------------------------------------

    def _run(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            check=False,
            **kwargs,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed (exit {done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}"
            )
        return done

    def _own(self, *paths: Path) -> None:
        if self.run_as is None:
            return
        for path in paths:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> PgServer:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the server's user must reach its folders
        self.socket_dir.mkdir(exist_ok=True)
        self._own(self.root, self.socket_dir)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
            )
        self._pg_ctl("start")
        self.pid = self._read_pid()
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"{SERVER_OPTIONS} -c unix_socket_directories='{self.socket_dir}' {self.options}"
        self._run(
            str(self.bin / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            *extra,
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server comes back on the same socket."""
        self._pg_ctl("restart", "-m", "fast")
        self.pid = self._read_pid()

    def crash(self, down_s: float) -> None:
        """`pg_ctl stop -m immediate` (a crash: no checkpoint, every connection cut), `down_s`
        seconds without a server, then start it again (crash recovery) on the same socket.

        This server commits with synchronous_commit=off (fast tests): a crash would lose the
        last commits, which no real server (on by default) does. A checkpoint first writes them;
        a drill that writes during the crash starts its server with synchronous_commit=on."""
        self.admin("CHECKPOINT")
        self._pg_ctl("stop", "-m", "immediate")
        time.sleep(down_s)
        self._pg_ctl("start")
        self.pid = self._read_pid()

    def _read_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT (fast shutdown) to the postmaster by its pid, SIGKILL after timeout_s; then the folder goes."""
        pid, self.pid = self.pid, None
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- databases --------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL for `dbname` through the socket folder (no host name, no port)."""
        return f"postgresql://{SUPERUSER}@/{dbname}?host={quote(str(self.socket_dir), safe='')}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, template: str = "template1") -> str:
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _unprivileged_user() -> pwd.struct_passwd:
    name = os.environ.get("EVMAN_PG_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise PgMissing(
            f"running as root, the test server needs an unprivileged user to run as; "
            f"user {name!r} does not exist (set EVMAN_PG_USER to one that does)"
        ) from exc


def _alive(pid: int) -> bool:
    from evman.engine.running.procs import pid_alive

    return pid_alive(pid)


def _reap(pid: int | None) -> None:
    """If the postmaster was re-parented to us (a subreaper test), collect its zombie."""
    if pid is None:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
