"""System crontab (a user after the schedule) or user crontab: from the lines, the folder a hint."""

from __future__ import annotations

import pwd
import re
import shutil
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final, Literal, NoReturn

from evman.engine.crontab.entries import KNOWN_COMMANDS, KNOWN_USERS, USER_RE
from evman.engine.crontab.fields import MACROS, has_valid_fields
from evman.engine.crontab.lines import take
from evman.engine.crontab.problems import CrontabError
from evman.engine.quoting import quoted

_SCRIPT_RE: Final = re.compile(r".+\.(?:sh|bash|py|pl|rb|php)$", re.IGNORECASE)
COMMAND_ACCOUNTS: Final = frozenset({"mail", "mailx", "sync", "man", "backup", "list", "irc"})
"""Debian's base accounts that are also programs, installed here or not: either, never proof."""
_KINDS: Final = {True: "system crontab", False: "user crontab"}
_FLAGS: Final = {True: "--system", False: "--user"}


@dataclass(frozen=True)
class Evidence:
    """What the word after an entry's schedule says about the file's format."""

    lineno: int
    word: str
    reads_as: Literal["user", "command", "either"]


@dataclass(frozen=True)
class _Verdict:
    is_system: bool | None
    """None: the lines do not tell."""
    why: str
    is_weak: bool = False
    """Only the same unknown word on every line says so: the folder may overrule it."""


def decide_format(source: str, entries: list[tuple[int, str]]) -> tuple[bool, list[tuple[int, str]]]:
    """(is_system, warnings) for a file's entry lines, or CrontabError when they cannot tell.

    The lines decide when they are clear: a user of this host after the schedule (system),
    a command there (user), or the same word after every schedule (system, a uniform user
    column). The folder (cron.d, crontabs, ...) decides only what the lines leave open; a
    folder that disagrees with clear lines gets a warning."""
    folder = _system_from_path(source)
    evidence = [e for e in (line_evidence(n, line) for n, line in entries) if e is not None]
    if not evidence:
        return bool(folder), []  # no line has valid time fields: their problems say more than a guess
    verdict = _from_lines(source, evidence)
    if verdict.is_system is None:
        if folder is None:
            _refuse(source, verdict.why)
        return folder, []
    if verdict.is_weak:
        return _weak(source, verdict, folder, evidence[0].word)
    if folder is not None and folder != verdict.is_system:
        return verdict.is_system, [(0, _disagreement(source, folder, verdict))]
    return verdict.is_system, []


def line_evidence(lineno: int, line: str) -> Evidence | None:
    """What the token after the schedule reads as; None when the line has no valid schedule."""
    time_count = 1 if line.lstrip(" \t").startswith("@") else 5
    tokens, rest = take(line, time_count + 1)
    if len(tokens) <= time_count or not (tokens[0] in MACROS or has_valid_fields(tokens[:time_count])):
        return None
    word = tokens[-1]
    return Evidence(lineno, word, _reads_as(word, rest))


def _reads_as(word: str, rest: str) -> Literal["user", "command", "either"]:
    if not rest.strip(" \t") or rest.lstrip(" \t").startswith("-"):
        return "command"  # nothing after it, or an option: it is the program
    if not USER_RE.fullmatch(word) or _SCRIPT_RE.fullmatch(word):
        return "command"
    if word in KNOWN_USERS:
        return "user"
    if word in KNOWN_COMMANDS:
        return "command"
    is_user = _host_has_user(word)
    is_program = word in COMMAND_ACCOUNTS or shutil.which(word) is not None
    if is_user != is_program:
        return "user" if is_user else "command"
    return "either"


def _host_has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _from_lines(source: str, evidence: list[Evidence]) -> _Verdict:
    users = [e for e in evidence if e.reads_as == "user"]
    commands = [e for e in evidence if e.reads_as == "command"]
    if users and commands:
        _refuse(
            source,
            f"line {users[0].lineno} names user {quoted(users[0].word)} after the schedule, "
            f"but on line {commands[0].lineno} {quoted(commands[0].word)} is not a user name",
        )
    if users:
        return _Verdict(True, f"line {users[0].lineno} names user {quoted(users[0].word)} after the schedule")
    if commands:
        return _Verdict(False, f"line {commands[0].lineno} runs {quoted(commands[0].word)} right after the schedule")
    words = {e.word for e in evidence}
    if len(evidence) > 1 and len(words) == 1:
        return _Verdict(
            True,
            f"every entry has {quoted(evidence[0].word)} after its schedule, as a system crontab names its user",
            is_weak=True,
        )
    return _Verdict(None, f"on line {evidence[0].lineno}, {quoted(evidence[0].word)} could be a user or a command")


def _weak(source: str, verdict: _Verdict, folder: bool | None, word: str) -> tuple[bool, list[tuple[int, str]]]:
    """A uniform unknown word: a system crontab unless its folder holds user crontabs."""
    if folder is True:
        return True, []
    no_user = f"this host has no user {quoted(word)}"
    if folder is False:
        _refuse(
            source,
            f"{verdict.why}, but its folder holds user crontabs and {no_user}; say --system "
            f"if {quoted(word)} is the user, --user if it is the command",
        )
    return True, [
        (
            0,
            f"read as a system crontab: {verdict.why} ({no_user}); if {quoted(word)} is "
            "the command, import with --user",
        )
    ]


def _disagreement(source: str, folder: bool, verdict: _Verdict) -> str:
    assert verdict.is_system is not None
    return (
        f"its folder ({PurePath(source).parent.name}) holds {_KINDS[folder]}s, but {verdict.why}; "
        f"read as a {_KINDS[verdict.is_system]} (say {_FLAGS[folder]} to read it as a "
        f"{_KINDS[folder]})"
    )


def _refuse(source: str, detail: str) -> NoReturn:
    raise CrontabError(
        source,
        [
            (
                0,
                "cannot tell whether this is a system crontab (a user after the "
                f"schedule) or a user crontab: {detail}; say which it is with "
                "--system or --user",
            )
        ],
    )


def _system_from_path(source: str) -> bool | None:
    path = PurePath(source)
    if path.parent.name == "cron.d" or (path.name == "crontab" and path.parent.name == "etc"):
        return True
    if path.parent.name == "crontabs" or ("spool" in path.parts and path.parent.name == "cron"):
        return False
    return None
