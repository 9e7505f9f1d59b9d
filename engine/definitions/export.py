"""Definitions back out as TOML, with secrets masked unless asked for."""

from __future__ import annotations

import shlex
from typing import Any, Final

import tomli_w

from evman.engine.definitions.masking import MASK, mask_password, mask_ping_url, mask_url
from evman.engine.definitions.table import without_none
from evman.engine.model import (
    Approval,
    Concurrency,
    Defaults,
    Definitions,
    EventSpec,
    HttpCall,
    Misfire,
    OnFailure,
    OnLost,
    OutputCheck,
    Param,
    Route,
    Runtime,
)
from evman.engine.timing.durations import format_duration, parse_duration

_SECRET_HEADER_WORDS: Final = ("auth", "token", "secret", "key", "password", "cookie")


def export_toml(definitions: Definitions, *, include_secrets: bool = False) -> str:
    """Definitions as a TOML file that loads back into them. Secrets in URLs become ****
    unless `include_secrets`. An event's timezone and driver are left out when they are the
    defaults'."""
    document: dict[str, Any] = {"defaults": _defaults_to_table(definitions.defaults, include_secrets)}
    if definitions.pools:
        document["pools"] = dict(definitions.pools)
    if definitions.routes:
        document["routes"] = {
            name: route_to_table(route, include_secrets=include_secrets) for name, route in definitions.routes.items()
        }
    if definitions.events:
        document["event"] = [
            _event_for_export(spec, definitions.defaults, include_secrets) for spec in definitions.events
        ]
    header = "" if include_secrets else "# Secrets are shown as ****; export with secrets to keep them.\n\n"
    return header + tomli_w.dumps(document)


def _defaults_to_table(defaults: Defaults, include_secrets: bool = False) -> dict[str, Any]:
    return without_none(
        {
            "timezone": defaults.timezone,
            "driver": defaults.driver,
            "repeat": duration_text(defaults.repeat_s),
            "max_repeats": defaults.max_repeats,
            "at_risk_margin": duration_text(defaults.at_risk_margin_s),
            "keep": _keep_to_table(defaults, Defaults()),
            "heartbeat": _heartbeat_to_table(defaults, include_secrets),
        }
    )


def _keep_to_table(keeper: Defaults | EventSpec, model: Defaults | None) -> dict[str, str | float] | None:
    """keep = { ... } with what differs from the model's defaults (an event: what it sets)."""
    table = {
        key: duration_text(value)
        for key in ("runs", "logs", "requests", "alerts")
        if (value := getattr(keeper, f"keep_{key}_s", None)) is not None
        and (model is None or value != getattr(model, f"keep_{key}_s"))
    }
    return table or None


def _heartbeat_to_table(defaults: Defaults, include_secrets: bool) -> dict[str, str | float] | str | None:
    """A ping URL's path is its secret (anyone holding it can say evman is alive): masked unless asked."""
    if defaults.heartbeat_url is None:
        return None
    url = defaults.heartbeat_url if include_secrets else mask_ping_url(defaults.heartbeat_url)
    if defaults.heartbeat_every_s == Defaults.heartbeat_every_s:
        return url
    return {"url": url, "every": duration_text(defaults.heartbeat_every_s)}


def _event_for_export(spec: EventSpec, defaults: Defaults, include_secrets: bool) -> dict[str, Any]:
    table = spec_to_table(spec)
    if spec.timezone == defaults.timezone:
        del table["timezone"]
    if spec.driver is not None and spec.driver == defaults.driver:
        del table["driver"]
    if "http" in table and not include_secrets:
        http = table["http"]
        http["url"] = mask_password(http["url"])
        if "headers" in http:
            http["headers"] = {
                name: MASK if _is_secret_header(name) else value for name, value in http["headers"].items()
            }
    return table


def _is_secret_header(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_HEADER_WORDS)


def route_to_table(route: Route, *, include_secrets: bool) -> dict[str, Any] | list[str]:
    """A route as written under [routes]: just its URL list when it has nothing else."""
    urls = list(route.urls) if include_secrets else [mask_url(url) for url in route.urls]
    config = route.config if include_secrets or route.config is None else mask_password(route.config)
    quiet = without_none({"from": route.quiet_from, "to": route.quiet_to, "except": list(route.quiet_except) or None})
    table = without_none(
        {
            "urls": urls or None,
            "config": config,
            "tags": list(route.tags) or None,
            "quiet": quiet or None,
            "escalate_to": route.escalate_to,
            "escalate_after": _duration_or_none(route.escalate_after_s),
        }
    )
    return urls if list(table) == ["urls"] else table


def spec_to_table(spec: EventSpec) -> dict[str, Any]:
    """The [[event]] table that loads back into `spec`; cwd stays absolute, values equal to
    the model's defaults are left out."""
    table: dict[str, Any] = {"name": spec.name, **_action_to_table(spec)}
    if spec.description:
        table["description"] = spec.description
    table.update(
        without_none(
            {
                "cwd": spec.cwd,
                "env": dict(spec.env) or None,
                "user": spec.user,
                "stdin": spec.stdin,
                "schedule": spec.schedule,
                "timezone": spec.timezone,
                "requires": spec.requires,
                "window": without_none({"earliest": spec.window.earliest, "latest": spec.window.latest}) or None,
                "late_after": spec.late_after,
                "deadline": spec.deadline,
                "runtime": _runtime_to_table(spec.runtime),
                "expect": _duration_or_none(spec.expect_s),
                "timeout": _duration_or_none(spec.timeout_s),
                "outputs": [_output_to_table(check) for check in spec.outputs] or None,
                "on_success": list(spec.on_success) or None,
                "on_failure": _on_failure_to_table(spec.on_failure),
                "driver": spec.driver,
                "concurrency": None if spec.concurrency is Concurrency.SKIP else spec.concurrency.value,
                "misfire": None if spec.misfire is Misfire.ONCE else spec.misfire.value,
                "on_lost": None if spec.on_lost is OnLost.ALERT else spec.on_lost.value,
                "hosts": list(spec.hosts) or None,
                "tags": list(spec.tags) or None,
                "keep": _keep_to_table(spec, None),
                "uses": dict(spec.uses) or None,
                "priority": spec.priority or None,
                "approval": _approval_to_table(spec.approval),
                "group": spec.group,
                "params": {name: _param_to_table(p) for name, p in spec.params.items()} or None,
            }
        )
    )
    return table


def _approval_to_table(approval: Approval | None) -> dict[str, Any] | None:
    if approval is None:
        return None
    return without_none(
        {
            "route": approval.route,
            "timeout": _duration_or_none(approval.timeout_s),
            "on_timeout": approval.on_timeout.value if approval.timeout_s is not None else None,
        }
    )


def _param_to_table(param: Param) -> dict[str, Any]:
    return without_none(
        {
            "default": param.default,
            "required": param.required or None,
            "choices": list(param.choices) or None,
            "pattern": param.pattern,
            "description": param.description or None,
        }
    )


def _action_to_table(spec: EventSpec) -> dict[str, Any]:
    if spec.run is not None:
        return {"run": shlex.join(spec.run)}
    if spec.shell is not None:
        return {"shell": spec.shell}
    if spec.call is not None:
        return {"call": spec.call}
    if spec.http is not None:
        return {"http": _http_to_table(spec.http)}
    return {}


def _http_to_table(http: HttpCall) -> dict[str, Any]:
    return without_none(
        {
            "url": http.url,
            "method": http.method,
            "expect": http.expect,
            "body": http.body,
            "headers": dict(http.headers) or None,
            "timeout": duration_text(http.timeout_s),
        }
    )


def _runtime_to_table(runtime: Runtime) -> dict[str, Any] | None:
    table = without_none(
        {"min": _duration_or_none(runtime.min_s), "max": _duration_or_none(runtime.max_s), "kill": runtime.kill or None}
    )
    return table or None


def _output_to_table(check: OutputCheck) -> dict[str, Any]:
    return without_none(
        {
            "path": check.path,
            "fresh": check.fresh or None,
            "min_size": check.min_size,
            "max_age": _duration_or_none(check.max_age_s),
            "contains": check.contains,
            "json": check.json or None,
        }
    )


def _on_failure_to_table(failure: OnFailure) -> dict[str, Any] | None:
    default = OnFailure()
    table = without_none(
        {
            "retries": failure.retries if failure.retries != default.retries else None,
            "backoff": duration_text(failure.backoff_s) if failure.backoff_s != default.backoff_s else None,
            "backoff_max": (
                duration_text(failure.backoff_max_s) if failure.backoff_max_s != default.backoff_max_s else None
            ),
            "prepare": failure.prepare,
            "trigger": list(failure.trigger) or None,
            "alert": failure.alert,
        }
    )
    return table or None


def _duration_or_none(seconds: float | None) -> str | float | None:
    return None if seconds is None else duration_text(seconds)


def duration_text(seconds: float) -> str | float:
    """`seconds` as "5m"-style text that parses back to exactly `seconds`; the bare number
    when no such text does (e.g. 0.0001)."""
    candidates = [format_duration(seconds)]
    whole = int(seconds)
    if whole == seconds:
        parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
        candidates.append("".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0s")
    for text in candidates:
        if parse_duration(text) == seconds:
            return text
    return seconds
