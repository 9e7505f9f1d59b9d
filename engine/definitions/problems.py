"""What is wrong with a definitions file: problems collected while reading, raised as one error."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


class DefinitionsError(ValueError):
    """Everything wrong with one definitions file, one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class Problems:
    source: str
    lines: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")
