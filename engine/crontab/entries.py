"""One entry line: its schedule, the user of a system crontab, the command and its stdin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from evman.engine.crontab.fields import MACROS, TIME_FIELD_RE, check_fields
from evman.engine.crontab.lines import split_percent, take
from evman.engine.crontab.problems import LineProblem
from evman.engine.quoting import quoted

USER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}\$?")
# Evidence for telling a system crontab (user after the schedule) from a user crontab.
KNOWN_USERS: Final = frozenset(
    {
        "root",
        "daemon",
        "bin",
        "sys",
        "nobody",
        "www-data",
        "postgres",
        "mysql",
        "proxy",
        "operator",
        "uucp",
        "news",
        "lp",
        "games",
        "nagios",
        "zabbix",
        "redis",
        "_apt",
    }
)
KNOWN_COMMANDS: Final = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "cd",
        "echo",
        "printf",
        "test",
        "true",
        "false",
        "sleep",
        "env",
        "nice",
        "ionice",
        "nohup",
        "timeout",
        "flock",
        "run-parts",
        "find",
        "rm",
        "cp",
        "mv",
        "tar",
        "gzip",
        "rsync",
        "curl",
        "wget",
        "python",
        "python3",
        "perl",
        "php",
        "ruby",
        "node",
        "make",
        "sudo",
        "su",
        "exec",
        "command",
        "if",
        "for",
        "while",
        "ls",
        "cat",
        "date",
        "touch",
        "mkdir",
        "chmod",
        "chown",
        "kill",
        "pkill",
        "systemctl",
        "service",
        "logrotate",
        "git",
        "docker",
        "psql",
        "mysqldump",
        "pg_dump",
        "certbot",
    }
)


@dataclass(frozen=True)
class Entry:
    lineno: int
    line: str
    schedule: str
    user: str | None
    command: str
    stdin: str | None
    env: dict[str, str]
    timezone: str | None
    description: str
    name: str | None
    name_lineno: int


def parse_entry(line: str, is_system: bool) -> tuple[str, str | None, str, str | None]:
    """(schedule, user, command, stdin) of an entry line, or LineProblem."""
    is_macro = line.lstrip(" \t").startswith("@")
    time_count = 1 if is_macro else 5
    tokens, rest = take(line, time_count + (1 if is_system else 0))
    if is_macro and tokens[0] not in MACROS:
        raise LineProblem(f"unknown schedule {quoted(tokens[0])}; cron knows " + ", ".join(sorted(MACROS)))
    if len(tokens) < time_count:
        raise LineProblem(
            f"expected 5 time fields and a command, found {len(tokens)} field" + ("s" if len(tokens) != 1 else "")
        )
    if not is_macro:
        check_fields(tokens)
    schedule = " ".join(tokens[:time_count])
    user = _checked_user(tokens, time_count, rest) if is_system else None
    command, stdin = split_percent(rest)
    words = command.split(maxsplit=1)
    if not words:  # nothing but blanks (a form feed, a vertical tab, Unicode spaces count too)
        where = "user field" if is_system else "schedule" if is_macro else "5 time fields"
        raise LineProblem(f"missing command after the {where}")
    first_word = words[0]
    if not is_macro and TIME_FIELD_RE.fullmatch(first_word):
        raise LineProblem(
            f"the command starts with {quoted(first_word)}: does this line have more "
            "than 5 time fields? cron uses exactly 5"
        )
    return schedule, user, command, stdin


def _checked_user(tokens: list[str], time_count: int, rest: str) -> str:
    if len(tokens) <= time_count:
        raise LineProblem("missing user field and command (a system crontab names the user after the schedule)")
    user = tokens[time_count]
    if not USER_RE.fullmatch(user) or (user in KNOWN_COMMANDS and user not in KNOWN_USERS):
        raise LineProblem(
            f"missing user field: {quoted(user)} is not a user name (a system "
            "crontab names the user after the schedule, e.g. root)"
        )
    if not rest.strip(" \t"):
        raise LineProblem(f"missing command after the user field {quoted(user)}")
    return user
