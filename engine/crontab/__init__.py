"""Crontab import: Debian-style crontab text -> evman event tables (plain dicts).

The rooms: `parse` (the whole import), `refusals` (files that are no crontab), `lines`
(line kinds, tokens, '%'), `fields` (the time fields), `entries` (one entry line),
`reader` (the lines in order), `system` (system or user crontab), `names` (event names).
"""

from __future__ import annotations

from evman.engine.crontab.fields import MACROS
from evman.engine.crontab.names import NAME_MAX
from evman.engine.crontab.parse import CrontabImport, parse_crontab
from evman.engine.crontab.problems import CrontabError

__all__ = ["MACROS", "NAME_MAX", "CrontabError", "CrontabImport", "parse_crontab"]
