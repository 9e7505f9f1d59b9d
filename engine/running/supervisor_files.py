"""What the command supervisor keeps on disk (supervisor_process.py imports it; standard
library only): its commands' log folders, each command's exit record on its log, and its own
complaints in <logs>/supervisor.stderr."""

from __future__ import annotations

import errno
import os
import time


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
