"""`evman prune [--dry-run]`: what retention would delete now, or delete it now (in small
batches, like the engine's housekeeper, which does the same every few minutes by itself)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

Option = Callable[[Callable[..., None]], Callable[..., None]]
"""A click option decorator (main.py's --json, --db)."""


def prune_now(store: Any, now: datetime, *, dry_run: bool) -> dict[str, Any]:
    from evman.engine.retention import Housekeeper

    keeper = Housekeeper(store)
    if dry_run:
        plan = keeper.dry_run(now)
        return {"dry_run": True, **plan, **_totals(plan["events"])}
    report = keeper.run_pass(now, rows=True)
    return {"dry_run": False, **report.counts(), "pages_freed": report.pages_freed, "batches": report.batches}


def _totals(events: dict[str, dict[str, int]]) -> dict[str, int]:
    return {"runs": sum(e["runs"] for e in events.values()), "logs": sum(e["logs"] for e in events.values())}


def render(data: dict[str, Any]) -> str:
    if not data["dry_run"]:
        return (
            f"deleted {data['runs']:,} run(s), {data['logs']:,} log file(s) ({data['log_bytes'] / 1e6:.1f} MB), "
            f"{data['requests']:,} handled request(s), {data['alerts']:,} resolved alert(s), "
            f"{data['deliveries']:,} delivery record(s); {data['pages_freed']:,} database page(s) given back"
        )
    lines = ["would delete (nothing was deleted; run without --dry-run to delete it now):"]
    events = data["events"]
    if events:
        width = max(len(name) for name in events)
        lines.append(f"  {'event'.ljust(width)}  {'runs':>9}  {'logs':>9}")
        lines += [f"  {n.ljust(width)}  {e['runs']:>9,}  {e['logs']:>9,}" for n, e in sorted(events.items())]
    lines.append(
        f"  {data['runs']:,} run(s) and {data['logs']:,} log file(s) in all; {data['requests']:,} handled "
        f"request(s), {data['alerts']:,} resolved alert(s), {data['deliveries']:,} delivery record(s)"
    )
    return "\n".join(lines)


def register(
    main: click.Group, open_store: Any, emit: Any, fail: Any, now: Any, json_option: Option, db_option: Option
) -> None:
    @main.command("prune", context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
    @json_option
    @db_option
    def prune(dry_run: bool, as_json: bool) -> None:
        """Delete what is past its keep horizon now: old runs and their logs, handled requests,
        resolved alerts. Never deleted: active runs, runs an open alert points at, each event's
        last 20 successes and last run of every outcome.

        Example: evman prune --dry-run
        """
        from evman.engine.store import StoreError

        store = open_store()
        try:
            data = prune_now(store, now(), dry_run=dry_run)
        except StoreError as exc:
            fail(str(exc))
        emit(data, as_json, render)
