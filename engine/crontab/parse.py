"""parse_crontab: crontab text to event tables, refusing what is no crontab."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from evman.engine.crontab.lines import line_kind
from evman.engine.crontab.names import checked_prefix, named_events
from evman.engine.crontab.problems import CrontabError
from evman.engine.crontab.reader import Reader
from evman.engine.crontab.refusals import refuse_anacrontab, refuse_binary, refuse_other_formats
from evman.engine.crontab.system import decide_format
from evman.engine.timing.schedules import parse_schedule


@dataclass(frozen=True)
class CrontabImport:
    events: list[dict[str, object]]
    """Event tables: name, schedule, shell, and stdin/env/user/timezone when set, description."""
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """Lines left out as invalid (line number, reason); only ever filled with skip_invalid."""
    warnings: list[tuple[int, str]] = field(default_factory=list)
    """What the caller should tell the user (line number, 0 for the file; what), e.g. that
    the folder and the content disagree about the format."""


def parse_crontab(
    text: str,
    *,
    source: str,
    system: bool | None = None,
    skip_invalid: bool = False,
    name_prefix: str | None = None,
    check_schedule: Callable[[str], object] | None = parse_schedule,
) -> CrontabImport:
    """Read a crontab the way Debian cron does and return one event table per entry.

    system=None detects a system crontab (user field after the schedule) from the
    lines, with the path as a hint (see system.decide_format). Any invalid line fails the whole import unless
    skip_invalid, which leaves such lines out and lists them in `skipped`; files
    that are no crontab fail either way. name_prefix goes in front of derived
    names, not of those set with `# evman: name=...`; a prefix that cannot start
    a name raises a plain ValueError. `check_schedule` has the last word on each
    schedule (a ValueError is the line's problem); None checks the fields only.
    """
    prefix = checked_prefix(name_prefix)
    text = text.removeprefix("\ufeff")
    refuse_binary(source, text)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    refuse_other_formats(source, text, lines)
    kinds = [(n, line_kind(line), line) for n, line in enumerate(lines, start=1)]
    entries = [(n, line) for n, kind, line in kinds if kind == "entry"]
    refuse_anacrontab(source, kinds, entries)
    if not entries:
        raise CrontabError(
            source, [(0, "no crontab entries found (only comments, blank lines or variables); nothing to import")]
        )
    is_system, warnings = (system, []) if system is not None else decide_format(source, entries)
    reader = Reader(source, is_system, check_schedule)
    for lineno, kind, line in kinds:
        reader.feed(lineno, kind, line)
    reader.finish()
    events, name_problems = named_events(reader.entries, prefix)
    problems = sorted(reader.problems + name_problems)
    if problems and not skip_invalid:
        raise CrontabError(source, problems)
    if not events:
        raise CrontabError(source, [*problems, (0, "no valid crontab entries found")])
    return CrontabImport(events=events, skipped=problems, warnings=warnings)
