"""The [defaults] table."""

from __future__ import annotations

from typing import Final

from evman.engine.definitions.problems import Problems
from evman.engine.definitions.routes import check_route
from evman.engine.definitions.table import Table, describe, without_none
from evman.engine.definitions.upkeep import read_defaults_upkeep
from evman.engine.definitions.zones import machine_timezone, read_timezone
from evman.engine.model import Defaults

DEFAULTS_KEYS: Final = ("timezone", "driver", "repeat", "max_repeats", "at_risk_margin", "keep", "heartbeat")


def read_defaults(raw: object, problems: Problems, route_names: frozenset[str] | None) -> Defaults:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.add("[defaults]", f"got {describe(raw)}; expected a table", ("defaults",))
        raw = {}
    table = Table(raw, problems, "[defaults]", at=("defaults",))
    table.check_keys(DEFAULTS_KEYS)
    driver = table.string("driver", blank_ok=False)
    if driver is not None:
        check_route(table, "driver", driver, route_names)
    return Defaults(
        **without_none(
            {
                "timezone": read_timezone(table) or machine_timezone(),
                "driver": driver,
                "repeat_s": table.duration("repeat", positive=True),
                "max_repeats": table.integer("max_repeats"),
                "at_risk_margin_s": table.duration("at_risk_margin"),
                **read_defaults_upkeep(table),
            }
        )
    )
