"""An event's output checks: the outputs array."""

from __future__ import annotations

import re
from typing import Final

from evman.engine.definitions.table import Table, describe, without_none
from evman.engine.model import OutputCheck

OUTPUT_KEYS: Final = ("path", "fresh", "min_size", "max_age", "contains", "json")


def read_outputs(table: Table) -> tuple[OutputCheck, ...] | None:
    items = table.get("outputs", (list,), 'an array of tables such as [{ path = "out.json" }]')
    if items is None:
        return None
    checks = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            table.error(f"outputs[{index}]", f"got {describe(item)}; expected a table {{ path = ... }}")
            continue
        check = _read_output(
            Table(item, table.problems, table.where, f"outputs[{index}].", (*table.at, "outputs", index))
        )
        if check is not None:
            checks.append(check)
    return tuple(checks)


def _read_output(table: Table) -> OutputCheck | None:
    table.check_keys(OUTPUT_KEYS)
    path = table.string("path", blank_ok=False)
    if "path" not in table.data:
        table.error("path", "missing; expected the file (or glob) to check")
    contains = table.string("contains")
    if contains is not None:
        try:
            re.compile(contains)
        except re.error as exc:
            table.error("contains", f"is not a valid regular expression ({exc}); expected a Python regex")
    if path is None:
        return None
    return OutputCheck(
        **without_none(
            {
                "path": path,
                "fresh": table.boolean("fresh"),
                "min_size": table.integer("min_size"),
                "max_age_s": table.duration("max_age"),
                "contains": contains,
                "json": table.boolean("json"),
            }
        )
    )
