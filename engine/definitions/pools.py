"""The `[pools]` table: NAME = how many slots (an exclusive lock is a pool of 1)."""

from __future__ import annotations

import re
from typing import Final

from evman.engine.definitions.problems import Problems
from evman.engine.definitions.table import Table, describe
from evman.engine.quoting import quoted

POOL_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
POOL_NAME_MAX: Final = 64
MAX_SLOTS: Final = 100_000


def read_pools(raw: object, problems: Problems) -> dict[str, int]:
    """name -> slots; a wrong entry is noted and left out."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(
            "[pools]", f"got {describe(raw)}; expected a table of NAME = slots, e.g. warehouse = 2", ("pools",)
        )
        return {}
    table = Table(raw, problems, "[pools]", at=("pools",))
    pools: dict[str, int] = {}
    for name in raw:
        if POOL_NAME.fullmatch(name) is None or len(name) > POOL_NAME_MAX:
            table.error(
                name,
                f"{quoted(name)} is not a valid pool name; expected lowercase letters, digits, '.', '_' "
                f"and '-', starting with a letter or digit, at most {POOL_NAME_MAX} characters",
            )
            continue
        slots = table.integer(name, minimum=1)
        if slots is not None and slots > MAX_SLOTS:
            table.error(name, f"is {slots}; expected at most {MAX_SLOTS} slots")
        elif slots is not None:
            pools[name] = slots
    return pools
