"""Whole files that are no crontab: binary, JSON, TOML or INI, anacrontab."""

from __future__ import annotations

import json
import re
from typing import Final

from evman.engine.crontab.lines import env_name
from evman.engine.crontab.problems import CrontabError
from evman.engine.quoting import clipped, quoted

_SECTION_RE: Final = re.compile(r"\s*\[{1,2}[^\[\]=]+\]{1,2}\s*")
ANACRON_RE: Final = re.compile(
    r"\s*(?:[0-9]+|@(?:daily|weekly|monthly|yearly|annually))[ \t]+[0-9]+[ \t]+"
    r"(?P<job>[^\s/]*[A-KM-VX-Za-km-vx-z][^\s/]*)[ \t]+\S"
)  # a letter, but not L or W


def refuse_binary(source: str, text: str) -> None:
    sample = text[:65536]
    if "\x00" in sample:
        raise CrontabError(
            source, [(0, "this is not a text file (it contains NUL bytes); evman imports crontabs only")]
        )
    junk = sum(1 for ch in sample if _is_junk(ch))
    if junk and junk * 20 > len(sample):
        raise CrontabError(
            source,
            [(0, f"this is not a text file ({junk} control or undecodable characters); evman imports crontabs only")],
        )


def _is_junk(ch: str) -> bool:
    code = ord(ch)
    return (code < 32 and ch not in "\t\n\r\f\v") or code == 0x7F or ch == "\ufffd" or 0xD800 <= code <= 0xDFFF


def refuse_other_formats(source: str, text: str, lines: list[str]) -> None:
    start = text.lstrip()
    if start.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            raise CrontabError(source, [(0, "this looks like a JSON file; evman imports crontabs only")])
    for lineno, line in enumerate(lines, start=1):
        if _SECTION_RE.fullmatch(line):
            hint = " (definitions files go to `evman load`)" if "event" in line else ""
            raise CrontabError(
                source,
                [
                    (
                        lineno,
                        f"this looks like a TOML or INI file (section "
                        f"{clipped(line.strip())}); evman imports crontabs "
                        f"only{hint}",
                    )
                ],
            )


def refuse_anacrontab(source: str, kinds: list[tuple[int, str, str]], entries: list[tuple[int, str]]) -> None:
    """An anacrontab: START_HOURS_RANGE, or every entry is `period delay job-id command`."""
    env_names = {env_name(line): n for n, kind, line in kinds if kind == "env"}
    reason: tuple[int, str] | None = None
    if "START_HOURS_RANGE" in env_names:
        reason = (env_names["START_HOURS_RANGE"], "it sets START_HOURS_RANGE")
    shaped = [(n, line) for n, line in entries if ANACRON_RE.match(line)]
    if shaped and (len(shaped) == len(entries) or "RANDOM_DELAY" in env_names):
        first_n, first = shaped[0]
        reason = reason or (
            first_n,
            f"period, delay and job identifier before the command: {quoted(' '.join(first.split()))}",
        )
    if reason is not None:
        raise CrontabError(
            source, [(reason[0], f"this looks like an anacrontab ({reason[1]}); evman imports crontabs only")]
        )
