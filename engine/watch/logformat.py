"""Log lines as text, or as JSON for log shippers (`--log-format json`): one object a line with
time (UTC ISO-8601), level, logger, message, and the exception's traceback when there is one.

Written on the standard library's Formatter: a JSON line is json.dumps of five fields, which a
dependency (python-json-logger) would not make shorter or safer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final

FORMATS: Final = ("text", "json")
TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def formatter(name: str) -> logging.Formatter:
    return JsonFormatter() if name == "json" else logging.Formatter(TEXT)
