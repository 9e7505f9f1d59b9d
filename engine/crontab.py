"""Crontab import: Debian-style crontab text -> evman event tables (plain dicts)."""
from __future__ import annotations

import hashlib
import importlib
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily",
                           "@midnight", "@hourly", "@reboot"})
NAME_MAX: Final = 64
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ENV_RE: Final = re.compile(r"""\s*(?P<name>"[^"]*"|'[^']*'|[^\s=]+)\s*=(?P<value>.*)""")
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}\$?")
_TOKEN_RE: Final = re.compile(r"[^ \t]+")
_DIRECTIVE_RE: Final = re.compile(r"\s*#\s*evman:(?P<body>.*)")
_SECTION_RE: Final = re.compile(r"\s*\[{1,2}[^\[\]=]+\]{1,2}\s*")
_TIME_FIELD_RE: Final = re.compile(r"[0-9*?][0-9*?,/LW#-]*")
_ANACRON_RE: Final = re.compile(
    r"\s*(?:[0-9]+|@(?:daily|weekly|monthly|yearly|annually))[ \t]+[0-9]+[ \t]+"
    r"(?P<job>[^\s/]*[A-KM-VX-Za-km-vx-z][^\s/]*)[ \t]+\S")  # a letter, but not L or W
_SCRIPT_SUFFIX_RE: Final = re.compile(r"\.(?:sh|bash|py|pl|rb|php)$", re.IGNORECASE)

# Variables that describe cron's own behaviour rather than the command's environment.
_NOT_ENV: Final = frozenset({"MAILTO", "MAILFROM", "CRON_TZ", "RANDOM_DELAY"})
_PLAIN_SHELLS: Final = frozenset({"/bin/sh", "/usr/bin/sh"})

# Evidence for telling a system crontab (user after the schedule) from a user crontab.
_KNOWN_USERS: Final = frozenset({
    "root", "daemon", "bin", "sys", "nobody", "www-data", "postgres", "mysql", "proxy",
    "operator", "uucp", "news", "lp", "games", "nagios", "zabbix", "redis", "_apt"})
_KNOWN_COMMANDS: Final = frozenset({
    "sh", "bash", "dash", "zsh", "cd", "echo", "printf", "test", "true", "false", "sleep",
    "env", "nice", "ionice", "nohup", "timeout", "flock", "run-parts", "find", "rm", "cp",
    "mv", "tar", "gzip", "rsync", "curl", "wget", "python", "python3", "perl", "php",
    "ruby", "node", "make", "sudo", "su", "exec", "command", "if", "for", "while", "ls",
    "cat", "date", "touch", "mkdir", "chmod", "chown", "kill", "pkill", "systemctl",
    "service", "logrotate", "git", "docker", "psql", "mysqldump", "pg_dump", "certbot"})

# What a derived name skips over to find the word that says what a line does.
_SEPARATORS: Final = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"})
_KEYWORDS: Final = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!",
                              "{", "}", "time", "exec", "fi", "done"})
_GUARDS: Final = frozenset({"test", "[", "[[", "cd", "command", "true", ":", "sleep",
                            "which", "type", "pushd", "export"})
_WRAPPERS: Final = frozenset({"nice", "ionice", "nohup", "timeout", "flock", "env", "sudo",
                              "su", "chronic", "cronic", "run-one", "run-parts", "setlock",
                              "systemd-cat", "sh", "bash", "dash"})


class CrontabError(ValueError):
    """A crontab that cannot be imported.

    `problems` holds every reason found as (line number, what is wrong); line 0
    means the file as a whole.
    """

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(_located(source, n, msg) for n, msg in problems))


def _located(source: str, lineno: int, message: str) -> str:
    return f"{source}:{lineno}: {message}" if lineno else f"{source}: {message}"


@dataclass(frozen=True)
class CrontabImport:
    events: list[dict[str, object]]
    """Event tables: name, schedule, shell, and stdin/env/user/timezone when set, description."""
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """Lines left out as invalid (line number, reason); only ever filled with skip_invalid."""


class _LineProblem(Exception):
    """What is wrong with one line; caught where the line number is known."""


@dataclass(frozen=True)
class _Entry:
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


def parse_crontab(text: str, *, source: str, system: bool | None = None,
                  skip_invalid: bool = False, name_prefix: str | None = None) -> CrontabImport:
    """Read a crontab the way Debian cron does and return one event table per entry.

    system=None detects a system crontab (user field after the schedule) from the
    path, else from the lines. Any invalid line fails the whole import unless
    skip_invalid, which leaves such lines out and lists them in `skipped`; files
    that are no crontab fail either way. name_prefix goes in front of derived
    names, not of those set with `# evman: name=...`; a prefix that cannot start
    a name raises a plain ValueError.
    """
    prefix = _checked_prefix(name_prefix)
    text = text.removeprefix("\ufeff")
    _refuse_binary(source, text)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    _refuse_other_formats(source, text, lines)
    kinds = [(n, _kind(line), line) for n, line in enumerate(lines, start=1)]
    entries = [(n, line) for n, kind, line in kinds if kind == "entry"]
    _refuse_anacrontab(source, kinds, entries)
    if not entries:
        raise CrontabError(source, [(0, "no crontab entries found (only comments, blank "
                                        "lines or variables); nothing to import")])
    is_system = system if system is not None else _detect_system(source, entries)
    reader = _Reader(source, is_system, _external_schedule_check())
    for lineno, kind, line in kinds:
        reader.feed(lineno, kind, line)
    reader.finish()
    events, name_problems = _named_events(reader.entries, prefix)
    problems = sorted(reader.problems + name_problems)
    if problems and not skip_invalid:
        raise CrontabError(source, problems)
    if not events:
        raise CrontabError(source, [*problems, (0, "no valid crontab entries found")])
    return CrontabImport(events=events, skipped=problems)


# -- whole-file refusals -------------------------------------------------------------

def _refuse_binary(source: str, text: str) -> None:
    sample = text[:65536]
    if "\x00" in sample:
        raise CrontabError(source, [(0, "this is not a text file (it contains NUL bytes); "
                                        "evman imports crontabs only")])
    junk = sum(1 for ch in sample if _is_junk(ch))
    if junk and junk * 20 > len(sample):
        raise CrontabError(source, [(0, f"this is not a text file ({junk} control or "
                                        "undecodable characters); evman imports crontabs only")])


def _is_junk(ch: str) -> bool:
    code = ord(ch)
    return ((code < 32 and ch not in "\t\n\r\f\v") or code == 0x7F or ch == "\ufffd"
            or 0xD800 <= code <= 0xDFFF)


def _refuse_other_formats(source: str, text: str, lines: list[str]) -> None:
    start = text.lstrip()
    if start.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            raise CrontabError(source, [(0, "this looks like a JSON file; evman imports "
                                            "crontabs only")])
    for lineno, line in enumerate(lines, start=1):
        if _SECTION_RE.fullmatch(line):
            hint = " (definitions files go to `evman load`)" if "event" in line else ""
            raise CrontabError(source, [(lineno, f"this looks like a TOML or INI file (section "
                                                 f"{line.strip()}); evman imports crontabs "
                                                 f"only{hint}")])


def _refuse_anacrontab(source: str, kinds: list[tuple[int, str, str]],
                       entries: list[tuple[int, str]]) -> None:
    """An anacrontab: START_HOURS_RANGE, or every entry is `period delay job-id command`."""
    env_names = {_env_name(line): n for n, kind, line in kinds if kind == "env"}
    reason: tuple[int, str] | None = None
    if "START_HOURS_RANGE" in env_names:
        reason = (env_names["START_HOURS_RANGE"], "it sets START_HOURS_RANGE")
    shaped = [(n, line) for n, line in entries if _ANACRON_RE.match(line)]
    if shaped and (len(shaped) == len(entries) or "RANDOM_DELAY" in env_names):
        first_n, first = shaped[0]
        reason = reason or (first_n, f"period, delay and job identifier before the command: "
                                     f"{' '.join(first.split())!r}")
    if reason is not None:
        raise CrontabError(source, [(reason[0], f"this looks like an anacrontab ({reason[1]}); "
                                                "evman imports crontabs only")])


# -- lines ---------------------------------------------------------------------------

def _kind(line: str) -> str:
    stripped = line.strip(" \t")
    if not stripped:
        return "blank"
    if stripped.startswith("#"):
        return "comment"
    return "env" if _ENV_RE.fullmatch(line) else "entry"


def _env_name(line: str) -> str:
    match = _ENV_RE.fullmatch(line)
    assert match is not None
    return _unquoted(match["name"]) or match["name"]


def _unquoted(value: str) -> str | None:
    """A value with one pair of matching quotes removed; None if a quote is left open."""
    if value and value[0] in "\"'":
        return value[1:-1] if len(value) >= 2 and value[-1] == value[0] else None
    return value


def _take(line: str, count: int) -> tuple[list[str], str]:
    """Up to `count` blank-separated tokens, and the rest after the blanks that follow."""
    tokens: list[str] = []
    pos = 0
    for _ in range(count):
        match = _TOKEN_RE.search(line, pos)
        if match is None:
            break
        tokens.append(match.group())
        pos = match.end()
    return tokens, line[pos:].lstrip(" \t")


def _split_percent(rest: str) -> tuple[str, str | None]:
    """cron's '%': command before the first unescaped one (with '\\%' -> '%'), stdin after."""
    command: list[str] = []
    escaped = False
    for index, ch in enumerate(rest):
        if escaped:
            escaped = False
            if ch == "%":
                command[-1] = "%"
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return "".join(command), _stdin(rest[index + 1:])
        command.append(ch)
    return "".join(command), None


def _stdin(data: str) -> str:
    """As cron feeds it: '%' -> newline, '\\%' -> '%', other backslashes kept, no newline added."""
    out: list[str] = []
    escaped = False
    for ch in data:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)


# -- time fields ---------------------------------------------------------------------

@dataclass(frozen=True)
class _FieldSpec:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first_named: int = 0


_MINUTE: Final = _FieldSpec("minute", 0, 59)
_HOUR: Final = _FieldSpec("hour", 0, 23)
_DOM: Final = _FieldSpec("day of month", 1, 31)
_MONTH: Final = _FieldSpec("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul",
                                            "aug", "sep", "oct", "nov", "dec"), 1)
_DOW: Final = _FieldSpec("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri",
                                               "sat"), 0)
_FIELDS: Final = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)


def _check_fields(fields: list[str]) -> None:
    for text, spec in zip(fields, _FIELDS):
        if text == "?":
            raise _LineProblem(f"{spec.label} '?' is Quartz syntax, not cron's; write '*'")
        for item in text.split(","):
            _check_item(item, text, spec)


def _check_item(item: str, text: str, spec: _FieldSpec) -> None:
    upper = item.upper()
    if not item:
        raise _LineProblem(f"{spec.label} field {text!r} has an empty list item")
    if spec is _DOM and upper in ("L", "LW"):
        return
    if spec is _DOM and re.fullmatch(r"[0-9]+W", upper):
        _value(upper[:-1], spec)
        return
    if spec is _DOW and (nth := re.fullmatch(r"(\w+)#(\w+)", item)):
        _value(nth[1], spec)
        if not re.fullmatch(r"[1-5]", nth[2]):
            raise _LineProblem(f"day of week {item!r}: the week number after '#' must be 1-5")
        return
    if spec is _DOW and re.fullmatch(r"[0-9]+L", upper):
        _value(upper[:-1], spec)
        return
    base, slash, step = item.partition("/")
    if slash and not (re.fullmatch(r"[0-9]+", step) and int(step) > 0):
        raise _LineProblem(f"{spec.label} field {text!r}: step {step!r} must be a whole number "
                           "of at least 1")
    if base == "*":
        return
    low, dash, high = base.partition("-")
    if dash and _value(low, spec) > _value(high, spec):
        raise _LineProblem(f"{spec.label} range {base!r} runs backwards; write it as two "
                           "ranges, e.g. 22-23,0-2")
    if not dash:
        _value(base, spec)


def _value(token: str, spec: _FieldSpec) -> int:
    if token.lower() in spec.names:
        return spec.names.index(token.lower()) + spec.first_named
    if not re.fullmatch(r"[0-9]+", token):
        names = f" or a name ({spec.names[0]}-{spec.names[-1]})" if spec.names else ""
        raise _LineProblem(f"{spec.label} {token!r} is not a number{names}")
    if not spec.low <= int(token) <= spec.high:
        raise _LineProblem(f"{spec.label} {token} is out of range {spec.low}-{spec.high}")
    return int(token)


def _external_schedule_check() -> Callable[[str], object] | None:
    """engine.schedules.parse_schedule when that module exists: the final word on a spec."""
    try:
        module = importlib.import_module("engine.schedules")
    except ImportError:
        return None
    check: object = getattr(module, "parse_schedule", None)
    return check if callable(check) else None


# -- entries -------------------------------------------------------------------------

def _parse_entry(line: str, is_system: bool) -> tuple[str, str | None, str, str | None]:
    """(schedule, user, command, stdin) of an entry line, or _LineProblem."""
    is_macro = line.lstrip(" \t").startswith("@")
    time_count = 1 if is_macro else 5
    tokens, rest = _take(line, time_count + (1 if is_system else 0))
    if is_macro and tokens[0] not in MACROS:
        raise _LineProblem(f"unknown schedule {tokens[0]!r}; cron knows "
                           + ", ".join(sorted(MACROS)))
    if len(tokens) < time_count:
        raise _LineProblem(f"expected 5 time fields and a command, found {len(tokens)} field"
                           + ("s" if len(tokens) != 1 else ""))
    if not is_macro:
        _check_fields(tokens)
    schedule = " ".join(tokens[:time_count])
    user = _checked_user(tokens, time_count, rest) if is_system else None
    command, stdin = _split_percent(rest)
    if not command.strip(" \t"):
        where = "user field" if is_system else "schedule" if is_macro else "5 time fields"
        raise _LineProblem(f"missing command after the {where}")
    first_word = command.split(maxsplit=1)[0]
    if not is_macro and _TIME_FIELD_RE.fullmatch(first_word):
        raise _LineProblem(f"the command starts with {first_word!r}: does this line have more "
                           "than 5 time fields? cron uses exactly 5")
    return schedule, user, command, stdin


def _checked_user(tokens: list[str], time_count: int, rest: str) -> str:
    if len(tokens) <= time_count:
        raise _LineProblem("missing user field and command (a system crontab names the user "
                           "after the schedule)")
    user = tokens[time_count]
    if not _USER_RE.fullmatch(user) or (user in _KNOWN_COMMANDS and user not in _KNOWN_USERS):
        raise _LineProblem(f"missing user field: {user!r} is not a user name (a system "
                           "crontab names the user after the schedule, e.g. root)")
    if not rest.strip(" \t"):
        raise _LineProblem(f"missing command after the user field {user!r}")
    return user


class _Reader:
    """Walks the lines in order, carrying the variables and comments in force."""

    def __init__(self, source: str, is_system: bool,
                 check: Callable[[str], object] | None) -> None:
        self.source = source
        self.is_system = is_system
        self.check = check
        self.env: dict[str, str] = {}
        self.cron_vars: dict[str, str] = {}
        self.comment: str | None = None
        self.pending_name: tuple[int, str] | None = None
        self.entries: list[_Entry] = []
        self.problems: list[tuple[int, str]] = []

    def feed(self, lineno: int, kind: str, line: str) -> None:
        try:
            if kind == "comment":
                self._comment(lineno, line)
            elif kind == "env":
                self._variable(line)
            elif kind == "entry":
                self._entry(lineno, line)
        except _LineProblem as problem:
            message = str(problem)
            if kind == "entry" and _ANACRON_RE.match(line):
                message += " (it reads like an anacrontab line: period, delay, job identifier)"
            self.problems.append((lineno, message))
        if kind != "comment":
            self.comment = None

    def finish(self) -> None:
        if self.pending_name is not None:
            self.problems.append((self.pending_name[0], "'# evman: name=...' is not followed "
                                                        "by a crontab entry"))

    def _comment(self, lineno: int, line: str) -> None:
        directive = _DIRECTIVE_RE.fullmatch(line)
        if directive is None:
            text = line.strip(" \t").lstrip("#").strip()
            self.comment = None if _is_commented_entry(text) else text or None
            return
        for item in directive["body"].replace(",", " ").split():
            key, _, value = item.partition("=")
            if key != "name":
                raise _LineProblem(f"unknown evman directive {item!r}; known: name=NAME")
            if not (_NAME_RE.fullmatch(value) and len(value) <= NAME_MAX):
                raise _LineProblem(f"event name {value!r} must match [a-z0-9][a-z0-9._-]* "
                                   f"and be at most {NAME_MAX} characters")
            self.pending_name = (lineno, value)

    def _variable(self, line: str) -> None:
        match = _ENV_RE.fullmatch(line)
        assert match is not None
        name, value = _unquoted(match["name"]), _unquoted(match["value"].strip(" \t"))
        if name is None or value is None:
            raise _LineProblem(f"unterminated quote in variable line {line.strip()!r}")
        if not _IDENT_RE.fullmatch(name):
            raise _LineProblem(f"{name!r} is not a variable name (letters, digits and _)")
        if name in ("CRON_TZ", "TZ") and value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise _LineProblem(f"unknown time zone {value!r} in {name}; use a zoneinfo "
                                   "name such as Europe/London") from None
        if name in _NOT_ENV or name == "TZ":
            self.cron_vars[name] = value
        if name not in _NOT_ENV:
            self.env[name] = value

    def _entry(self, lineno: int, line: str) -> None:
        schedule, user, command, stdin = _parse_entry(line, self.is_system)
        if self.check is not None:
            try:
                self.check(schedule)
            except ValueError as error:
                raise _LineProblem(f"schedule {schedule!r}: {error}") from None
        name_lineno, name = self.pending_name or (lineno, None)
        self.pending_name = None
        zone = self.cron_vars.get("CRON_TZ") or self.cron_vars.get("TZ") or None
        self.entries.append(_Entry(lineno, line.strip(" \t"), schedule, user, command, stdin,
                                   dict(self.env), zone, self._description(lineno), name,
                                   name_lineno))

    def _description(self, lineno: int) -> str:
        parts = [self.comment.rstrip(".") + "."] if self.comment else []
        parts.append(f"Imported from {self.source} line {lineno}.")
        if mailto := self.cron_vars.get("MAILTO"):
            parts.append(f"Cron mailed its output to {mailto} (MAILTO); evman alerts "
                         "through its routes instead.")
        shell = self.env.get("SHELL")
        if shell and shell not in _PLAIN_SHELLS:
            parts.append(f"The crontab set SHELL={shell}; evman runs shell commands with "
                         "/bin/sh.")
        if delay := self.cron_vars.get("RANDOM_DELAY"):
            parts.append(f"Cron delayed it by up to {delay} random minutes (RANDOM_DELAY); "
                         "evman does not.")
        return " ".join(parts)


def _is_commented_entry(text: str) -> bool:
    """A commented-out cron line or the `m h dom mon dow command` header: not a description."""
    tokens = text.split()
    if tokens[:2] == ["m", "h"] or tokens[:1] and tokens[0] in MACROS:
        return True
    return len(tokens) > 5 and _has_valid_fields(tokens[:5])


def _has_valid_fields(fields: list[str]) -> bool:
    try:
        _check_fields(fields)
    except _LineProblem:
        return False
    return True


# -- system or user crontab ----------------------------------------------------------

def _detect_system(source: str, entries: list[tuple[int, str]]) -> bool:
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
    tokens, rest = _take(line, time_count + 1)
    if len(tokens) <= time_count or not (tokens[0] in MACROS
                                         or _has_valid_fields(tokens[:time_count])):
        return None, ""
    word = tokens[-1]
    if not rest.strip(" \t") or rest.lstrip(" \t").startswith("-"):
        return False, word
    if not _USER_RE.fullmatch(word) or (word in _KNOWN_COMMANDS and word not in _KNOWN_USERS):
        return False, word
    return (True if word in _KNOWN_USERS else None), word


# -- names ---------------------------------------------------------------------------

def _checked_prefix(name_prefix: str | None) -> str | None:
    if name_prefix is None:
        return None
    prefix = _slug(name_prefix)
    if not prefix or len(prefix) > 32:
        raise ValueError(f"name prefix {name_prefix!r} must give 1-32 characters of "
                         "[a-z0-9._-] starting with a letter or digit")
    return prefix


def _named_events(entries: list[_Entry], prefix: str | None,
                  ) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    """Explicit names first (a repeat is a problem), then derived ones around them."""
    taken: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    kept: list[_Entry] = []
    for entry in entries:
        if entry.name is not None and entry.name in taken:
            problems.append((entry.name_lineno, f"event name {entry.name!r} is already used "
                                                f"on line {taken[entry.name]}"))
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


def _event(entry: _Entry, name: str) -> dict[str, object]:
    event: dict[str, object] = {"name": name, "schedule": entry.schedule,
                                "shell": entry.command}
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


def _derived_name(entry: _Entry, prefix: str | None) -> str:
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
