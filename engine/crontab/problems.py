"""What is wrong with a crontab: the error for a whole import, and the one for a line."""

from __future__ import annotations


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


class LineProblem(Exception):
    """What is wrong with one line; caught where the line number is known."""
