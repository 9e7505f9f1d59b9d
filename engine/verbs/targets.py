"""What every verb's handler shares: the error it answers with, and reading its target (an event
name, `run:N`, `alert:N`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evman.engine.quoting import quoted

if TYPE_CHECKING:
    from evman.engine.tick.context import Tick

Handler = Callable[["Tick", str, dict[str, Any], str], str]
"""handler(tick, target, args, who) -> the answer's detail. `args` is the request's JSON object
(the CLI's options, by Option.key); `who` names the requester, for the rows it writes. Raises
RequestError for an answer that refuses (its text is the outcome), or Routed (several engines)
when another engine owns what the target names."""


class RequestError(ValueError):
    """The request is refused; the message is its outcome, for the person who asked."""


def event_named(tick: Tick, name: str) -> str:
    if tick.view.spec(name) is None:
        raise RequestError(f"unknown event {quoted(name)}; `evman list` shows the defined events")
    return name


def number_in(target: str, kind: str) -> int:
    """N of a `kind:N` target."""
    try:
        return int(target.split(":", 1)[1])
    except (IndexError, ValueError) as exc:
        raise RequestError(f"bad {kind} target {quoted(target)}; expected {kind}:N") from exc


def run_row(tick: Tick, target: str) -> dict[str, Any]:
    run_id = number_in(target, "run")
    row = tick.view.store.run(run_id)
    if row is None:
        raise RequestError(f"there is no run {run_id}; `evman history` lists runs")
    return row


def params_arg(values: tuple[str, ...], now: object = None) -> dict[str, str]:
    """--param NAME=VALUE (repeatable) as {NAME: VALUE}; the engine checks them against the
    event. ValueError, in words, for a value that is not NAME=VALUE or a name given twice."""
    given: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {text!r} is not NAME=VALUE; example: --param customer=acme")
        if name.strip() in given:
            raise ValueError(f"--param {name.strip()} is given twice")
        given[name.strip()] = value
    return given
