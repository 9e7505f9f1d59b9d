"""Event names for crontab entries: `# evman: name=...`, else derived from what the line runs."""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Final

from evman.engine.crontab.entries import Entry
from evman.engine.quoting import quoted

NAME_MAX: Final = 64
NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SCRIPT_SUFFIX_RE: Final = re.compile(r"\.(?:sh|bash|py|pl|rb|php)$", re.IGNORECASE)
# What a derived name skips over to find the word that says what a line does.
_SEPARATORS: Final = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"})
_KEYWORDS: Final = frozenset(
    {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time", "exec", "fi", "done"}
)
_GUARDS: Final = frozenset(
    {"test", "[", "[[", "cd", "command", "true", ":", "sleep", "which", "type", "pushd", "export"}
)
_WRAPPERS: Final = frozenset(
    {
        "nice",
        "ionice",
        "nohup",
        "timeout",
        "flock",
        "env",
        "sudo",
        "su",
        "chronic",
        "cronic",
        "run-one",
        "run-parts",
        "setlock",
        "systemd-cat",
        "sh",
        "bash",
        "dash",
    }
)


def checked_prefix(name_prefix: str | None) -> str | None:
    if name_prefix is None:
        return None
    prefix = _slug(name_prefix)
    if not prefix or len(prefix) > 32:
        raise ValueError(
            f"name prefix {quoted(name_prefix)} must give 1-32 characters of "
            "[a-z0-9._-] starting with a letter or digit"
        )
    return prefix


def named_events(entries: list[Entry], prefix: str | None) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    """Explicit names first (a repeat is a problem), then derived ones around them."""
    taken: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    kept: list[Entry] = []
    for entry in entries:
        if entry.name is not None and entry.name in taken:
            problems.append(
                (entry.name_lineno, f"event name {quoted(entry.name)} is already used on line {taken[entry.name]}")
            )
            continue
        if entry.name is not None:
            taken[entry.name] = entry.lineno
        kept.append(entry)
    events: list[dict[str, object]] = []
    for entry in kept:
        name = entry.name or _unique(_derived_name(entry, prefix), taken)
        taken[name] = entry.lineno
        events.append(_event(entry, name))
    return events, problems


def _event(entry: Entry, name: str) -> dict[str, object]:
    event: dict[str, object] = {"name": name, "schedule": entry.schedule, "shell": entry.command}
    if entry.stdin is not None:
        event["stdin"] = entry.stdin
    if entry.env:
        event["env"] = entry.env
    if entry.user is not None:
        event["user"] = entry.user
    if entry.timezone is not None:
        event["timezone"] = entry.timezone
    event["description"] = entry.description
    return event


def _derived_name(entry: Entry, prefix: str | None) -> str:
    """[prefix-]word-hash: the word says what runs, the hash of the line keeps it stable."""
    digest = hashlib.sha256(entry.line.encode()).hexdigest()[:4]
    room = NAME_MAX - len(digest) - 1 - (len(prefix) + 1 if prefix else 0) - 4
    stem = _slug(_telling_word(entry.command))[:room].rstrip("-._") or "cron"
    return "-".join(part for part in (prefix, stem, digest) if part)


def _unique(base: str, taken: dict[str, int]) -> str:
    name, count = base, 1
    while name in taken:
        count += 1
        name = f"{base}-{count}"
    return name


def _slug(word: str) -> str:
    base = _SCRIPT_SUFFIX_RE.sub("", word.rstrip("/").rsplit("/", 1)[-1])
    return re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")


def _telling_word(command: str) -> str:
    """The program a command is about: past guards (`test -x X &&`), into wrappers.

    Only a name comes of it, so a guess is fine; the line's hash keeps names apart.
    """
    words = _shell_words(command)
    segments: list[list[str]] = [[]]
    for word in words:
        if word in _SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(word)
    for segment in segments:
        rest = [w for w in segment if w not in _KEYWORDS and not re.match(r"\w+=", w)]
        if not rest or rest[0] in _GUARDS or any("sleep" in w for w in rest):
            continue  # a check, a change of directory, a random delay: not the job itself
        if _slug(rest[0]) in _WRAPPERS:
            return next((w for w in rest[1:] if "/" in w and not w.startswith("-")), rest[0])
        return rest[0]
    return words[0] if words else "cron"


def _shell_words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: plain words are good enough for a name
        return command.split()
