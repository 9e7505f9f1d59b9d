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

import collections
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
    from evman.engine.running.supervisor_files import COMPLAINTS, complain, make_folders, record_exit
else:  # the supervisor itself, a script run with -I: its folder is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import spawning  # type: ignore[import-not-found,no-redef]
    from supervisor_files import COMPLAINTS, complain, make_folders, record_exit  # type: ignore[import-not-found,no-redef]

KILL_GRACE_S = 5.0
SPAWN_THREADS = 8
REAP_EVERY_S = 0.002
"""How often the loop reaps and answers while a batch's threads start commands."""


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
        self.fresh: collections.deque[tuple[Child | None, dict[str, Any]]] = collections.deque()
        """What the spawning threads started (or refused), for this thread to answer and register."""
        self.ended_early: dict[int, tuple[int, Any]] = {}
        self.unwatched: list[Child] = []
        self.kills: list[tuple[float, int]] = []
        self.env = spawning.Environment(dict(os.environ))
        self.devnull = os.open(os.devnull, os.O_RDONLY)
        self.replies: list[bytes] = []
        self.pending = b""
        self.dirs: set[str] = set()
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
            self.watch_unwatched()
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
                self.env = spawning.Environment(dict(msg["env"]))
            elif msg.get("op") == "dirs":
                self.make_dirs(msg["dirs"])
            elif msg.get("op") == "kill":
                self.kill(int(msg["pid"]), float(msg.get("grace", KILL_GRACE_S)))
        self.spawn_all(spawns)

    # -- starting ------------------------------------------------------------------------

    def spawn_all(self, spawns: list[dict[str, Any]]) -> None:
        """Start every spawn, SPAWN_THREADS at a time (a start is mostly the kernel's vfork and
        exec, during which the others run), while this thread registers what started, reaps
        what ended already and tells the engine: a burst's first ends are heard while its last
        commands start, and the engine's next batch waits for no pile of ends (bench W2)."""
        if not spawns:
            return
        self.env.found.clear()  # a program installed or removed since the last batch is seen
        if len(spawns) == 1:
            self.fresh.append(self.spawn(spawns[0]))
        else:
            work = iter(spawns)  # next() on it is one step under the GIL: no lock

            def worker() -> None:
                for msg in work:
                    self.fresh.append(self.spawn(msg))

            threads = [threading.Thread(target=worker) for _ in range(min(SPAWN_THREADS, len(spawns)))]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                time.sleep(REAP_EVERY_S)
                self.take_started()
                self.reap()
                self.send()
            for thread in threads:
                thread.join()
        self.take_started()
        self.ended_early.clear()  # what is left was no command's (a failed exec's child)

    def take_started(self) -> None:
        """Answer the starts the threads made, and watch their children; one that `reap` (which
        waits for any child) found ended before it was registered here ends now."""
        while self.fresh:
            child, answer = self.fresh.popleft()
            self.reply(answer)  # before its end: the engine hears the start first
            if child is None:
                continue
            ended = self.ended_early.pop(child.pid, None)
            if ended is not None:
                self.finished(child, *ended)
                continue
            self.children[child.pid] = child
            self.unwatched.append(child)

    def watch_unwatched(self) -> None:
        """A pidfd for each child still running, before the loop waits: a burst's children mostly
        end while the loop reaps every REAP_EVERY_S, and need none (4 system calls each)."""
        for child in self.unwatched:
            if child.pid in self.children:
                self.watch(child)
        self.unwatched.clear()

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
                msg["argv"], self.env.executables(msg["argv"][0], msg["env"]), msg["cwd"],
                self.env.encoded(msg["env"]), feed_r, fd, msg.get("user") or (None, None),
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
        """Every child that ended: its exit record written, then the engine told."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:  # started by a thread, not registered yet (take_started)
                self.ended_early[pid] = (status, usage)
                continue
            if child.pidfd is not None:
                self.sel.unregister(child.pidfd)
                os.close(child.pidfd)
            self.finished(child, status, usage)

    def finished(self, child: Child, status: int, usage: Any) -> None:
        """The exit record of `child` on its log (the engine reads it there if it dies before it
        wrote the end), then told to the engine (its reply queued)."""
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
        try:
            record_exit(child.log, child.key[1], record)
        except OSError as exc:  # a full disk, a removed log: the engine still hears it, if there
            complain(f"cannot record the exit of {child.log}: {exc}")
        if self.sock is not None:  # the record's keys after the reply's own
            self.replies.append(b'{"op":"exit","key":%s,%s\n' % (json.dumps(child.key).encode(), record[1:]))

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
