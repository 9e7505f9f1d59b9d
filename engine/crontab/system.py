"""System crontab (a user after the schedule) or user crontab: from the path, else the lines."""
from __future__ import annotations

from pathlib import PurePath

from engine.crontab.entries import KNOWN_COMMANDS, KNOWN_USERS, USER_RE
from engine.crontab.fields import MACROS, has_valid_fields
from engine.crontab.lines import take
from engine.crontab.problems import CrontabError


def detect_system(source: str, entries: list[tuple[int, str]]) -> bool:
    by_path = _system_from_path(source)
    if by_path is not None:
        return by_path
    verdicts = [(n, *_user_field_evidence(line)) for n, line in entries]
    system_like = [(n, word) for n, verdict, word in verdicts if verdict is True]
    user_like = [(n, word) for n, verdict, word in verdicts if verdict is False]
    if system_like and not user_like:
        return True
    if user_like and not system_like:
        return False
    if all(word == "" for _, _, word in verdicts):
        return False  # no line has valid time fields; their problems say more than a guess
    if system_like:
        detail = (f"line {system_like[0][0]} names user {system_like[0][1]!r} after the "
                  f"schedule, but on line {user_like[0][0]} {user_like[0][1]!r} is not a user name")
    else:
        lineno, _, word = next(v for v in verdicts if v[2])
        detail = f"on line {lineno}, {word!r} could be a user or a command"
    raise CrontabError(source, [(0, "cannot tell whether this is a system crontab (a user "
                                    f"after the schedule) or a user crontab: {detail}; say "
                                    "which it is with --system or --user")])


def _system_from_path(source: str) -> bool | None:
    path = PurePath(source)
    if path.parent.name == "cron.d" or (path.name == "crontab" and path.parent.name == "etc"):
        return True
    if path.parent.name == "crontabs" or ("spool" in path.parts and path.parent.name == "cron"):
        return False
    return None


def _user_field_evidence(line: str) -> tuple[bool | None, str]:
    """Whether the token after the schedule reads as a user (True), a command (False), or either."""
    time_count = 1 if line.lstrip(" \t").startswith("@") else 5
    tokens, rest = take(line, time_count + 1)
    if len(tokens) <= time_count or not (tokens[0] in MACROS
                                         or has_valid_fields(tokens[:time_count])):
        return None, ""
    word = tokens[-1]
    if not rest.strip(" \t") or rest.lstrip(" \t").startswith("-"):
        return False, word
    if not USER_RE.fullmatch(word) or (word in KNOWN_COMMANDS and word not in KNOWN_USERS):
        return False, word
    return (True if word in KNOWN_USERS else None), word
