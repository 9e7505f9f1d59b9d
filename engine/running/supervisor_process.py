"""The command supervisor: one process per engine that starts its commands, reaps them, and
writes each one's exit status beside its log, so that a command outlives a crashed engine
and its outcome is still known.

    python -I -S engine/running/supervisor_process.py FD [COMPLAINTS_FILE]

FD is one end of a Unix stream socket whose other end the engine holds. Both speak lines of
JSON. The engine sends {"op": "env", "env": {...}} (the base environment), {"op": "dirs",
"dirs": [...]} (log folders to make now, ahead of a burst of commands), {"op": "spawn",
"key": [run_id, phase], "argv", "cwd", "env" (added to the base), "log", "exit", "stdin",
"header", "user"} and {"op": "kill", "pid", "grace"}; the supervisor answers each spawn
with {"op": "started", "key", "pid", "since_ns", "at"} or {"op": "refused", "key", "what",
"errno", "error"}, and sends {"op": "exit", "key", ...the exit record} when a command ends.

The exit record is also kept with the log: as its extended attribute `user.evman.exit`
(`user.evman.prepare.exit` for a prepare step), set in one call, so a reader sees all of it
or none; on a file system without extended attributes, in `<log>.exit` (write, then
rename). Its keys: run_id, phase, pid, exit_code (negative: the signal that ended it,
as subprocess says), signal (its name or null), started_at and ended_at (Unix seconds),
since_ns (the log's mtime stamped just before the spawn, the file system's own clock),
utime_s, stime_s, maxrss_kb, supervisor (this pid).

It runs in a session of its own (the engine starts it so): a signal to the engine's group
does not reach it. When the engine goes away it keeps reaping, and exits when its last
command has ended. SIGTERM to it is passed on to every command's process group (SIGKILL
after the grace), and it stops accepting commands. It imports the standard library only
(the engine starts it with -I -S: no site-packages, a start in a few milliseconds), and
starts commands as subprocess does, with vfork (spawning.py): no copy of this process's
memory per command."""

from __future__ import annotations

import errno
import gc
import heapq
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from typing import IO, Any

if __package__:  # imported (the tests, the bench's limit)
    from evman.engine.running import spawning
else:  # the supervisor itself, a script run with -I: its folder is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import spawning  # type: ignore[import-not-found,no-redef]

KILL_GRACE_S = 5.0
SPAWN_THREADS = 8


class Child:
    __slots__ = ("key", "pid", "log", "started_at", "since_ns", "proc", "pidfd")

    def __init__(self, key: list[Any], pid: int, log: str, started_at: float, since_ns: int, proc: Any = None) -> None:
        self.key, self.pid, self.log = key, pid, log
        self.started_at, self.since_ns, self.proc = started_at, since_ns, proc
        self.pidfd: int | None = None


class Supervisor:
    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.children: dict[int, Child] = {}
        self.kills: list[tuple[float, int]] = []
        self.base_env: dict[str, str] = dict(os.environ)
        self.base_env_list = spawning.encode_env(self.base_env)
        self.devnull = os.open(os.devnull, os.O_RDONLY)
        self.replies: list[bytes] = []
        self.pending = b""
        self.dirs: set[str] = set()
        self.found: dict[tuple[str, str], str | None] = {}
        """(program, PATH) -> its full path, looked up once per batch of spawns (see find)."""
        self.stopping = False
        self.pid = os.getpid()
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        self.sel.register(self.wake_r, selectors.EVENT_READ)
        # a child's end wakes the loop through its pidfd, not SIGCHLD: 500 signals a burst,
        # each interrupting the threads that are starting the rest, cost more than 500 fds
        signal.signal(signal.SIGTERM, self.on_term)
        # handled, not ignored: an ignored signal would stay ignored in the commands
        signal.signal(signal.SIGINT, lambda _s, _f: None)
        signal.signal(signal.SIGHUP, lambda _s, _f: None)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        while self.sock is not None or self.children:
            timeout = max(0.0, self.kills[0][0] - time.monotonic()) if self.kills else None
            for key, _ in self.sel.select(timeout):
                if key.fileobj is self.sock:
                    self.receive()
                    # the answers to the engine's starts go now, before reaping: the engine's tick
                    # waits for them, and reaping writes exit records (file-system metadata, which
                    # waits behind the journal while other work unlinks or syncs: 10-30 ms, bench W8)
                    self.send()
                elif key.fileobj == self.wake_r:
                    self.drain_wakeups()
            self.reap()
            self.fire_kills()
            self.send()

    def receive(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:  # the engine is gone: keep reaping, and end with the last command
            self.drop_engine()
            return
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        self.handle_all([json.loads(line) for line in lines if line])

    def drop_engine(self) -> None:
        if self.sock is not None:
            self.sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.replies.clear()

    def drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def send(self) -> None:
        if not self.replies or self.sock is None:
            self.replies.clear()
            return
        data = b"".join(self.replies)
        self.replies.clear()
        try:
            self.sock.sendall(data)
        except OSError:  # the engine died mid-way: its successor reads the exit files
            self.drop_engine()

    def reply(self, message: dict[str, Any]) -> None:
        self.replies.append(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def handle_all(self, messages: list[dict[str, Any]]) -> None:
        """In order, except that runs of spawns start together (SPAWN_THREADS at a time)."""
        spawns: list[dict[str, Any]] = []
        for msg in messages:
            if msg.get("op") == "spawn":
                spawns.append(msg)
                continue
            self.spawn_all(spawns)
            spawns = []
            if msg.get("op") == "env":
                self.set_env(msg["env"])
            elif msg.get("op") == "dirs":
                self.make_dirs(msg["dirs"])
            elif msg.get("op") == "kill":
                self.kill(int(msg["pid"]), float(msg.get("grace", KILL_GRACE_S)))
        self.spawn_all(spawns)

    # -- starting ------------------------------------------------------------------------

    def spawn_all(self, spawns: list[dict[str, Any]]) -> None:
        """Start every spawn, a few threads at a time: a start is mostly the kernel's fork and
        exec, during which subprocess lets other threads run (posix_spawn does not: one
        thread, waiting on each child's exec behind a burst of its siblings, was 2.5x slower)."""
        if not spawns:
            return
        self.found.clear()  # a program installed or removed since the last batch is seen
        results: list[tuple[Child | None, dict[str, Any]]] = [(None, {})] * len(spawns)
        if len(spawns) == 1:
            results[0] = self.spawn(spawns[0])
        else:
            work = iter(enumerate(spawns))  # next() on it is one step under the GIL: no lock

            def worker() -> None:
                for index, msg in work:
                    results[index] = self.spawn(msg)

            threads = [threading.Thread(target=worker) for _ in range(min(SPAWN_THREADS, len(spawns)))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for child, answer in results:  # registered before any reaping: the loop reaps after
            if child is not None:
                self.children[child.pid] = child
                self.watch(child)
            self.reply(answer)

    def watch(self, child: Child) -> None:
        try:
            child.pidfd = os.pidfd_open(child.pid)
        except OSError:  # out of fds: the next wake-up (any other) still reaps it
            return
        self.sel.register(child.pidfd, selectors.EVENT_READ)

    def spawn(self, msg: dict[str, Any]) -> tuple[Child | None, dict[str, Any]]:
        key = msg["key"]
        if self.stopping:
            return None, refusal(key, "stopping", OSError(0, "the supervisor is stopping (SIGTERM)"))
        try:
            fd = self.open_log(msg["log"])
        except OSError as exc:
            return None, refusal(key, "log", exc)
        try:
            return self.start(msg, key, fd)
        finally:
            os.close(fd)

    def start(self, msg: dict[str, Any], key: list[Any], fd: int) -> tuple[Child | None, dict[str, Any]]:
        if msg.get("header"):
            os.write(fd, msg["header"].encode())
        os.utime(fd)  # the file system's own "now": what `fresh` output checks compare with
        since_ns = os.fstat(fd).st_mtime_ns
        stdin: str | None = msg.get("stdin")
        feed_r, feed_w = os.pipe() if stdin is not None else (self.devnull, None)
        try:
            pid, proc = spawning.spawn(
                msg["argv"], self.executables(msg["argv"][0], msg["env"]), msg["cwd"],
                self.env_list(msg["env"]), feed_r, fd, msg.get("user") or (None, None),
            )  # fmt: skip
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv, cwd or env
            if feed_w is not None:
                os.close(feed_w)
            missing_cwd = isinstance(exc, OSError) and exc.filename == msg["cwd"]
            return None, refusal(key, "cwd" if missing_cwd else "exec", exc)
        finally:
            if feed_w is not None:
                os.close(feed_r)
        if feed_w is not None and stdin is not None:
            feed(os.fdopen(feed_w, "wb"), stdin)
        started = time.time()
        child = Child(key, pid, msg["log"], started, since_ns, proc)
        return child, {"op": "started", "key": key, "pid": pid, "since_ns": since_ns, "at": started}

    def set_env(self, env: dict[str, str]) -> None:
        """The engine's environment, the base of every command's: encoded once, not per command."""
        self.base_env = dict(env)
        self.base_env_list = spawning.encode_env(self.base_env)

    def env_list(self, extra: dict[str, str]) -> list[bytes]:
        """A command's environment: the base and its own variables (which win over the base's)."""
        if not extra:
            return self.base_env_list
        if self.base_env.keys().isdisjoint(extra):
            return self.base_env_list + spawning.encode_env(extra)
        return spawning.encode_env({**self.base_env, **extra})

    def executables(self, program: str, extra: dict[str, str]) -> tuple[bytes, ...]:
        path = extra["PATH"] if "PATH" in extra else self.base_env.get("PATH", os.defpath)
        return spawning.exec_path(program, self.find(program, path), path)

    def find(self, program: str, path: str) -> str | None:
        """The full path of `program` as exec would find it on the command's PATH, once per
        batch: otherwise each child tries every PATH folder before it (8 failed execs here,
        ~25 µs of the spawning thread's wait). None (exec searches itself) for a path, a
        relative PATH folder (which depends on the cwd), or a program not found."""
        if "/" in program:
            return None
        key = (program, path)
        if key not in self.found:
            self.found[key] = spawning.find_program(program, path)
        return self.found[key]

    def open_log(self, path: str) -> int:
        self.make_dir(os.path.dirname(path))
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def make_dir(self, folder: str) -> None:
        """A run's log folder (an event's day) and every missing level above it, each made once, 0700."""
        if folder not in self.dirs:
            make_folders(folder)
            self.dirs.add(folder)

    def make_dirs(self, folders: list[str]) -> None:
        """Log folders made ahead of a burst: a burst's spawns, 8 at a time, all waited on
        their parent folder's lock to make their own (a new folder per event, ~150 µs each
        on this machine's ext4 under load, one at a time)."""
        for folder in folders:
            try:
                self.make_dir(folder)
            except OSError as exc:  # said again, with the run, when its command cannot open its log
                complain(f"cannot make the log folder {folder}: {exc}")

    # -- reaping ---------------------------------------------------------------------------

    def reap(self) -> None:
        """Every child that ended: the engine is told first (sent at once), then each exit record
        is written on its log (an extended attribute in a block of its own, ~40 µs each here:
        a burst's last ends were heard only after all of them). The engine needs the record
        only if it dies before it wrote the end, and a new engine waits for it while this lives."""
        records: list[tuple[Child, bytes]] = []
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.pop(pid, None)
            if child is not None:
                if child.pidfd is not None:
                    self.sel.unregister(child.pidfd)
                    os.close(child.pidfd)
                records.append((child, self.finished(child, status, usage)))
        if records:
            self.send()
        for child, record in records:
            try:
                record_exit(child.log, child.key[1], record)
            except OSError as exc:  # a full disk, a removed log: the engine still hears it, if there
                complain(f"cannot record the exit of {child.log}: {exc}")

    def finished(self, child: Child, status: int, usage: Any) -> bytes:
        """The exit record of `child`, told to the engine (its reply queued)."""
        code = os.waitstatus_to_exitcode(status)
        if child.proc is not None:
            child.proc.returncode = code  # reaped here: subprocess must not wait for it again
        record = json.dumps(
            {
                "run_id": child.key[0],
                "phase": child.key[1],
                "pid": child.pid,
                "exit_code": code,
                "signal": signal.Signals(-code).name if code < 0 else None,
                "started_at": child.started_at,
                "ended_at": time.time(),
                "since_ns": child.since_ns,
                "utime_s": round(usage.ru_utime, 6),
                "stime_s": round(usage.ru_stime, 6),
                "maxrss_kb": usage.ru_maxrss,
                "supervisor": self.pid,
            },
            separators=(",", ":"),
        ).encode()
        if self.sock is not None:  # the record's keys after the reply's own
            self.replies.append(b'{"op":"exit","key":%s,%s\n' % (json.dumps(child.key).encode(), record[1:]))
        return record

    # -- killing ------------------------------------------------------------------------------

    def kill(self, pid: int, grace_s: float) -> None:
        """TERM the command's process group, and KILL it after `grace_s` if its leader still runs."""
        signal_group(pid, signal.SIGTERM)
        heapq.heappush(self.kills, (time.monotonic() + grace_s, pid))

    def fire_kills(self) -> None:
        now = time.monotonic()
        while self.kills and self.kills[0][0] <= now:
            _, pid = heapq.heappop(self.kills)
            signal_group(pid, signal.SIGKILL)

    def on_term(self, _signum: int, _frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            self.kill(pid, KILL_GRACE_S)


def make_folders(folder: str) -> None:
    """`folder` and every missing level above it, each made 0700 itself (as logfiles.make_folders:
    this process imports nothing of evman)."""
    missing: list[str] = []
    while folder and not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        missing.append(folder)
        folder = os.path.dirname(folder)
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            pass


def refusal(key: list[Any], what: str, exc: BaseException) -> dict[str, Any]:
    return {
        "op": "refused",
        "key": key,
        "what": what,
        "errno": getattr(exc, "errno", None) or 0,
        "error": getattr(exc, "strerror", None) or str(exc),
    }


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def exit_attribute(phase: str) -> str:
    return "user.evman.exit" if phase == "main" else f"user.evman.{phase}.exit"


def exit_file(log: str, phase: str) -> str:
    return f"{log}.exit" if phase == "main" else f"{log}.{phase}.exit"


def record_exit(log: str, phase: str, data: bytes) -> None:
    """The exit record on the log itself, as an extended attribute (one setxattr: all of it
    or none, ~7 µs), or where the file system has none, in `<log>.exit` (write, then rename:
    a new file costs ~0.3-0.9 ms of CPU on this machine's ext4, a burst of commands each)."""
    try:
        os.setxattr(log, exit_attribute(phase), data)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC):
            raise
    write_atomically(exit_file(log, phase), data)


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def feed(pipe: IO[bytes], text: str) -> None:
    """Give a command its stdin text from a thread: a command that reads late must not stall
    the others' starts and reaping."""

    def write() -> None:
        try:
            pipe.write(text.encode())
        except OSError:
            pass  # it closed its stdin early: nothing more to give it
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    threading.Thread(target=write, daemon=True).start()


COMPLAINTS: list[str] = []
"""Where complaints go (argv[2]): made at the first, never at start."""
COMPLAINTS_MAX_BYTES = 1 << 20
"""Past this the file becomes <file>.1 (the one before goes) and a new one starts: a year of
complaints takes at most twice this."""


def rotate(path: str, most: int = COMPLAINTS_MAX_BYTES) -> None:
    try:
        if os.stat(path).st_size >= most:
            os.replace(path, path + ".1")
    except OSError:
        pass  # not there yet, or cannot: append to what there is


def complain(text: str) -> None:
    """Say something went wrong in <logs>/supervisor.stderr (created now if need be)."""
    if not COMPLAINTS:
        return
    try:
        os.makedirs(os.path.dirname(COMPLAINTS[0]), mode=0o700, exist_ok=True)
        rotate(COMPLAINTS[0])
        fd = os.open(COMPLAINTS[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{time.strftime('%Y-%m-%dT%H:%M:%S')} evman supervisor {os.getpid()}: {text}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # nowhere to say it


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    COMPLAINTS.extend(argv[2:3])
    gc.freeze()  # what start-up made is never garbage: a collection walks only what came after
    gc.set_threshold(10_000)  # each start makes a few dozen objects, none of them cyclic
    try:
        Supervisor(sock).run()
    except BaseException:
        import traceback

        complain(traceback.format_exc())
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
