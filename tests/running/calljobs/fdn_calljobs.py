"""Callables for the `call` executor tests; the event's cwd points at this folder."""

from __future__ import annotations

from typing import Any


def plain() -> str:
    """No context argument; what it returns is recorded."""
    return "plain ran"


def with_context(ctx: Any) -> int:
    ctx.log.write(
        f"event={ctx.event} run={ctx.run_id} attempt={ctx.attempt} "
        f"scheduled={ctx.scheduled_for} colour={ctx.env.get('COLOUR')}\n"
    )
    return 0


def explode() -> None:
    raise RuntimeError("the flux capacitor is empty")


def says_no() -> bool:
    return False
