"""Stage 1: act on rows of the `requests` mailbox, each through its verb's handler (the table of
verbs is engine/verbs/table.py)."""

from __future__ import annotations

import json
from typing import Any

from evman.engine.clock import iso
from evman.engine.coordination.params import ParamError
from evman.engine.quoting import quoted
from evman.engine.tick.context import Tick
from evman.engine.tick.routing import Routed
from evman.engine.verbs import VERBS, RequestError, verb_named


def handle_requests(tick: Tick) -> None:
    """Answer every open request in id order; each answer is written with this tick's writes."""
    store = tick.view.store
    for req in store.claim_requests(tick.owner):  # several engines: each request to one
        if int(req["id"]) in tick.batch.requests:
            continue  # answered by a tick whose write failed: its answer and effects are carried on
        key = req["dedupe_key"]
        holder = store.dedupe_holder(key, int(req["id"])) if key else int(req["id"])
        if holder is None:
            continue  # another engine decides this key now: answered at a later tick
        if holder != int(req["id"]):
            outcome, detail = f"duplicate of request {holder}; not acted on again", None
        else:
            try:
                outcome, detail = handle_request(tick, dict(req))
            except Routed as routed:
                _leave_open(tick, dict(req), routed)
                continue
        tick.batch.request_handled(int(req["id"]), iso(tick.now), outcome, detail)
        tick.change("request", str(req["target"]), None, outcome, f"{req['verb']} #{req['id']}")


def _leave_open(tick: Tick, req: dict[str, Any], routed: Routed) -> None:
    """Several engines: not this engine's to answer; its owner claims it at its next tick."""
    if routed.engine_id is not None and routed.engine_id != req.get("engine_id"):
        tick.batch.request_routed(int(req["id"]), routed.engine_id)
    tick.change("request", str(req["target"]), None, "routed", f"{req['verb']} #{req['id']}: {routed}")


def handle_request(tick: Tick, req: dict[str, Any]) -> tuple[str, str | None]:
    """Act on one request row; returns (outcome, detail): outcome is "ok" or an error text.
    Raises Routed when another engine owns what it names (several engines)."""
    verb = verb_named(str(req["verb"]))
    if verb is None:
        expected = ", ".join(v.name for v in VERBS)
        return f"unknown verb {quoted(str(req['verb']).strip().lower())}; expected one of {expected}", None
    tick.request = req
    try:
        args = json.loads(req["args"]) if req.get("args") else {}
        if not isinstance(args, dict):
            raise RequestError("args must be a JSON object")
        detail = verb.handler(tick, str(req["target"]).strip(), args, _who(req))
    except (RequestError, ParamError) as exc:
        return str(exc), None
    except (ValueError, TypeError) as exc:
        return f"bad request: {exc}", None
    return "ok", detail


def _who(req: dict[str, Any]) -> str:
    by = req.get("requested_by") or "someone"
    return f"{by} (request {req['id']})"
