"""What a page says: titles and bodies of alert notices (full for email, short for chat) and digests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from evman.engine.clock import parse_iso
from evman.engine.model import ACTIVE_STATES, EventSpec, Trigger, alert_facts
from evman.engine.timing.durations import format_duration

EMAIL_TAIL_LINES: Final = 15
CHAT_TAIL_LINES: Final = 3
CHAT_LINE_CHARS: Final = 300
UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "GMT+0"})
MANUAL_TRIGGERS: Final = frozenset({Trigger.MANUAL, Trigger.RESTART})


@dataclass(frozen=True)
class Notice:
    title: str
    full: str
    """Plain text for email: every detail, one per line."""
    short: str
    """A few lines for chat targets."""
    notify_type: str = "info"


@dataclass(frozen=True)
class PageContext:
    """What the notifier knows about this page beyond the alert row."""

    zone: str
    ack_command: str
    page: int = 1
    escalated_to: str | None = None
    escalate_after_s: float | None = None
    held_since: datetime | None = None
    quiet: str | None = None
    """The quiet hours that held it, "22:00-07:00", when it was held."""


def title_of(alert: Mapping[str, Any]) -> str:
    return f"[evman] {alert['kind']}: {alert['event']}"


def compose(
    alert: Mapping[str, Any], run: Mapping[str, Any] | None, spec: EventSpec | None, ctx: PageContext
) -> Notice:
    """The notice for one alert; `run` is its runs row, `spec` its event (None when gone)."""
    zone = spec.timezone if spec is not None else ctx.zone
    full = [str(alert["message"]), ""]
    full += [f"{label + ':':<11}{value}" for label, value in _facts(alert, run, spec, zone, ctx)]
    tail = _tail(run, EMAIL_TAIL_LINES)
    if tail:
        full += ["", f"Last {len(tail)} line(s) of output:", *("    " + line for line in tail)]
    full += ["", *_ack_lines(alert, ctx, indent="    ")]
    return Notice(
        title_of(alert),
        "\n".join(full).rstrip() + "\n",
        _short(alert, run, spec, zone, ctx),
        _notify_type(str(alert["kind"])),
    )


def _notify_type(kind: str) -> str:
    """Apprise's notify type (its colours and icons) for the kind; "info" for a kind not known."""
    facts = alert_facts(kind)
    return "info" if facts is None else facts.severity


def compose_digest(
    items: Sequence[tuple[Mapping[str, Any], Notice]], *, route: str, quiet: str | None, zone: str
) -> Notice:
    """One message for the notices a route held during quiet hours."""
    title = f"[evman] digest: {len(items)} notices held during quiet hours"
    head = f"These notices for route '{route}' were held during quiet hours" + (
        f" ({quiet}, {zone})." if quiet else "."
    )
    full, short = [head, ""], [head]
    for alert, notice in items:
        when = _local(parse_iso(str(alert["created_at"])), zone)
        full += [f"== {notice.title} (alert:{alert['id']}, {when}) ==", notice.full.rstrip(), ""]
        short.append(f"- {alert['kind']}: {alert['event']} at {when}: {alert['message']}"[:CHAT_LINE_CHARS])
    return Notice(title, "\n".join(full).rstrip() + "\n", "\n".join(short) + "\n", "warning")


def _facts(
    alert: Mapping[str, Any], run: Mapping[str, Any] | None, spec: EventSpec | None, zone: str, ctx: PageContext
) -> list[tuple[str, str]]:
    facts = [("When", _when(alert, zone))]
    if run is not None:
        facts.append(("Run", f"{run['id']} of {alert['event']}, trigger: {_trigger(run)}"))
        result = _result(run)
        if result:
            facts.append(("Result", result))
        runtime = _runtime(run, spec, alert)
        if runtime:
            facts.append(("Runtime", runtime))
        facts_of_kind = alert_facts(str(alert["kind"]))
        if facts_of_kind is not None and facts_of_kind.while_waiting and run.get("waiting_reason"):
            facts.append(("Waiting", str(run["waiting_reason"])))
    if spec is not None and (spec.window.earliest or spec.window.latest):
        facts.append(
            ("Window", f"{spec.window.earliest or 'any time'} to {spec.window.latest or 'any time'} ({spec.timezone})")
        )
    facts += _paging_facts(alert, ctx)
    return facts


def _paging_facts(alert: Mapping[str, Any], ctx: PageContext) -> list[tuple[str, str]]:
    facts = []
    if ctx.page > 1:
        facts.append(("Reminder", f"page {ctx.page}: nobody has acknowledged this yet"))
    if ctx.escalated_to:
        after = f" within {format_duration(ctx.escalate_after_s)}" if ctx.escalate_after_s else ""
        facts.append(("Escalated", f"also sent to route '{ctx.escalated_to}': not acknowledged{after}"))
    if ctx.held_since is not None:
        quiet = f" ({ctx.quiet})" if ctx.quiet else ""
        facts.append(("Held", f"during quiet hours{quiet} since {_local(ctx.held_since, ctx.zone)}"))
    return facts


def _short(
    alert: Mapping[str, Any], run: Mapping[str, Any] | None, spec: EventSpec | None, zone: str, ctx: PageContext
) -> str:
    bits = [_when(alert, zone, brief=True)]
    if run is not None:
        bits.append(f"run {run['id']} ({_trigger(run)})")
        result = _result(run)
        if result:
            bits.append(result)
        runtime = _runtime(run, spec, alert)
        if runtime:
            bits.append(runtime)
    if ctx.page > 1:
        bits.append(f"reminder {ctx.page}")
    if ctx.escalated_to:
        bits.append(f"escalated to {ctx.escalated_to}")
    if ctx.held_since is not None:
        bits.append(f"held for quiet hours since {_local(ctx.held_since, ctx.zone, seconds=False)}")
    lines = [str(alert["message"]), " · ".join(bits)]
    tail = _tail(run, CHAT_TAIL_LINES)
    if tail:
        lines.append(("Output: " + " | ".join(tail))[:CHAT_LINE_CHARS])
    lines += _ack_lines(alert, ctx, indent="", brief=True)
    return "\n".join(lines) + "\n"


def _ack_lines(alert: Mapping[str, Any], ctx: PageContext, *, indent: str, brief: bool = False) -> list[str]:
    if alert["status"] != "open":
        return ["Nothing to do: this notice needs no acknowledgement."] if not brief else []
    if brief:
        return [f"Ack: {ctx.ack_command}"]
    return ["Acknowledge it (stops reminders and escalation):", indent + ctx.ack_command]


def _when(alert: Mapping[str, Any], zone: str, *, brief: bool = False) -> str:
    first = parse_iso(str(alert["created_at"]))
    latest = parse_iso(str(alert["updated_at"])) or first
    assert first is not None and latest is not None
    is_utc = zone in UTC_NAMES
    if brief:
        utc = "" if is_utc else f" ({latest.astimezone(UTC):%H:%M} UTC)"
        return f"{_local(latest, zone, seconds=False)}{utc}"
    utc = "" if is_utc else f" ({latest.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"
    text = f"{_local(latest, zone)}{utc}"
    count = int(alert.get("count") or 1)
    if count > 1:
        text += f"; {count} times since {_local(first, zone)}"
    return text


def _local(at: datetime | None, zone: str, *, seconds: bool = True) -> str:
    if at is None:
        return "-"
    local = at.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%H:%M %Z")


def _trigger(run: Mapping[str, Any]) -> str:
    text = str(run.get("trigger") or "?")
    by = run.get("triggered_by")
    if by:
        text += f" by {by}" if text in MANUAL_TRIGGERS else f", {by}"
    if int(run.get("attempt") or 1) > 1 and "retry" not in text:
        text += f", attempt {run['attempt']}"
    return text


def _result(run: Mapping[str, Any]) -> str:
    parts = []
    if run.get("exit_code") is not None:
        parts.append(f"exit code {run['exit_code']}")
    reason = str(run.get("reason") or "")
    if reason and reason not in parts:
        parts.append(reason)
    elif not reason and run.get("state") in ACTIVE_STATES:
        parts.append(f"still {run['state']}")
    return "; ".join(parts)


def _runtime(run: Mapping[str, Any], spec: EventSpec | None, alert: Mapping[str, Any]) -> str:
    started = parse_iso(run.get("started_at"))
    if started is None:
        return ""
    ended = parse_iso(run.get("ended_at"))
    took = ((ended or parse_iso(str(alert["updated_at"])) or started) - started).total_seconds()
    text = ("ran " if ended else "running for ") + format_duration(max(0.0, took))
    return text + f" ({_bounds(spec)})"


def _bounds(spec: EventSpec | None) -> str:
    low = None if spec is None else spec.runtime.min_s
    high = None if spec is None else spec.runtime.max_s
    if low is not None and high is not None:
        return f"normal {format_duration(low)} to {format_duration(high)}"
    if high is not None:
        return f"normal at most {format_duration(high)}"
    if low is not None:
        return f"normal at least {format_duration(low)}"
    return "no normal runtime set"


def _tail(run: Mapping[str, Any] | None, lines: int) -> list[str]:
    if run is None or not run.get("output_tail"):
        return []
    kept = [line.rstrip() for line in str(run["output_tail"]).splitlines() if line.strip()]
    return kept[-lines:]
