"""Walking a crontab's lines in order, with the variables and comments in force."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from evman.engine.crontab.entries import Entry, parse_entry
from evman.engine.crontab.fields import MACROS, has_valid_fields
from evman.engine.crontab.lines import ENV_RE, unquoted
from evman.engine.crontab.names import NAME_MAX, NAME_RE
from evman.engine.crontab.problems import LineProblem
from evman.engine.crontab.refusals import ANACRON_RE
from evman.engine.quoting import quoted

_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE_RE: Final = re.compile(r"\s*#\s*evman:(?P<body>.*)")
# Variables that describe cron's own behaviour rather than the command's environment.
_NOT_ENV: Final = frozenset({"MAILTO", "MAILFROM", "CRON_TZ", "RANDOM_DELAY"})
_PLAIN_SHELLS: Final = frozenset({"/bin/sh", "/usr/bin/sh"})


class Reader:
    """Walks the lines in order, carrying the variables and comments in force."""

    def __init__(self, source: str, is_system: bool, check: Callable[[str], object] | None) -> None:
        self.source = source
        self.is_system = is_system
        self.check = check
        self.env: dict[str, str] = {}
        self.cron_vars: dict[str, str] = {}
        self.comment: str | None = None
        self.pending_name: tuple[int, str] | None = None
        self.entries: list[Entry] = []
        self.problems: list[tuple[int, str]] = []

    def feed(self, lineno: int, kind: str, line: str) -> None:
        try:
            if kind == "comment":
                self._comment(lineno, line)
            elif kind == "env":
                self._variable(line)
            elif kind == "entry":
                self._entry(lineno, line)
        except LineProblem as problem:
            message = str(problem)
            if kind == "entry" and ANACRON_RE.match(line):
                message += " (it reads like an anacrontab line: period, delay, job identifier)"
            self.problems.append((lineno, message))
        if kind != "comment":
            self.comment = None

    def finish(self) -> None:
        if self.pending_name is not None:
            self.problems.append((self.pending_name[0], "'# evman: name=...' is not followed by a crontab entry"))

    def _comment(self, lineno: int, line: str) -> None:
        directive = _DIRECTIVE_RE.fullmatch(line)
        if directive is None:
            text = line.strip(" \t").lstrip("#").strip()
            self.comment = None if _is_commented_entry(text) else text or None
            return
        for item in directive["body"].replace(",", " ").split():
            key, _, value = item.partition("=")
            if key != "name":
                raise LineProblem(f"unknown evman directive {quoted(item)}; known: name=NAME")
            if not (NAME_RE.fullmatch(value) and len(value) <= NAME_MAX):
                raise LineProblem(
                    f"event name {quoted(value)} must match [a-z0-9][a-z0-9._-]* and be at most {NAME_MAX} characters"
                )
            self.pending_name = (lineno, value)

    def _variable(self, line: str) -> None:
        match = ENV_RE.fullmatch(line)
        assert match is not None
        name, value = unquoted(match["name"]), unquoted(match["value"].strip(" \t"))
        if name is None or value is None:
            raise LineProblem(f"unterminated quote in variable line {quoted(line.strip())}")
        if not _IDENT_RE.fullmatch(name):
            raise LineProblem(f"{quoted(name)} is not a variable name (letters, digits and _)")
        if name in ("CRON_TZ", "TZ") and value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
                raise LineProblem(
                    f"unknown time zone {quoted(value)} in {name}; use a zoneinfo name such as Europe/London"
                ) from None
        if name in _NOT_ENV or name == "TZ":
            self.cron_vars[name] = value
        if name not in _NOT_ENV:
            self.env[name] = value

    def _entry(self, lineno: int, line: str) -> None:
        schedule, user, command, stdin = parse_entry(line, self.is_system)
        if self.check is not None:
            try:
                self.check(schedule)
            except ValueError as error:
                raise LineProblem(f"schedule {quoted(schedule)}: {error}") from None
        name_lineno, name = self.pending_name or (lineno, None)
        self.pending_name = None
        zone = self.cron_vars.get("CRON_TZ") or self.cron_vars.get("TZ") or None
        self.entries.append(
            Entry(
                lineno,
                line.strip(" \t"),
                schedule,
                user,
                command,
                stdin,
                dict(self.env),
                zone,
                self._description(lineno),
                name,
                name_lineno,
            )
        )

    def _description(self, lineno: int) -> str:
        parts = [self.comment.rstrip(".") + "."] if self.comment else []
        parts.append(f"Imported from {self.source} line {lineno}.")
        if mailto := self.cron_vars.get("MAILTO"):
            parts.append(f"Cron mailed its output to {mailto} (MAILTO); evman alerts through its routes instead.")
        shell = self.env.get("SHELL")
        if shell and shell not in _PLAIN_SHELLS:
            parts.append(f"The crontab set SHELL={shell}; evman runs shell commands with /bin/sh.")
        if delay := self.cron_vars.get("RANDOM_DELAY"):
            parts.append(f"Cron delayed it by up to {delay} random minutes (RANDOM_DELAY); evman does not.")
        return " ".join(parts)


def _is_commented_entry(text: str) -> bool:
    """A commented-out cron line or the `m h dom mon dow command` header: not a description."""
    tokens = text.split()
    if tokens[:2] == ["m", "h"] or tokens[:1] and tokens[0] in MACROS:
        return True
    return len(tokens) > 5 and has_valid_fields(tokens[:5])
