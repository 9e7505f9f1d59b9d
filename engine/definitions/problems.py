"""What is wrong with a definitions file: problems collected while reading, raised as one error."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from evman.engine.definitions.positions import KeyPath, Positions


class DefinitionsError(ValueError):
    """Everything wrong with one definitions file, one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class Problems:
    source: str
    text: str | None = None
    """The file's TOML, where each problem finds its line; None for a table with no file."""
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What is odd but not wrong (the file loads), said the same way."""

    @functools.cached_property
    def positions(self) -> Positions | None:
        """Built at the first problem: a file without any costs nothing."""
        return None if self.text is None else Positions(self.text)

    def add(self, where: str, message: str, at: KeyPath = ()) -> None:
        """Note a problem at `at`, the key it is about: "file:line: where: message"."""
        self.lines.append(self._placed(where, message, at))

    def warn(self, where: str, message: str, at: KeyPath = ()) -> None:
        """Note a warning at `at`, placed as a problem is."""
        self.warnings.append(self._placed(where, message, at))

    def _placed(self, where: str, message: str, at: KeyPath) -> str:
        line = self.positions.line_of(at) if at and self.positions is not None else None
        place = self.source if line is None else f"{self.source}:{line}"
        return f"{place}: {where}: {message}" if where else f"{place}: {message}"
