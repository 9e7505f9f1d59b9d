"""The tables: every schema version as a step both backends are built from (see ddl.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from evman.engine.store.ddl import NOW, AddColumn, Column, Index, Seed, Step, Table, check, columns_after

_EVENTS: Final = Table(
    "events",
    (
        Column("name", "text"),
        Column("spec", "text", not_null=True),
        Column("kind", "text", not_null=True),
        Column("schedule", "text"),
        Column("timezone", "text", not_null=True),
        Column("driver", "text"),
        Column("requires", "text"),
        Column("held", "int", not_null=True, default=0),
        Column("held_by", "text"),
        Column("next_fire_at", "text"),
        Column("defined", "int", not_null=True, default=1),
        Column("source", "text"),
        Column("created_at", "text", not_null=True),
        Column("updated_at", "text", not_null=True),
    ),
    pk=("name",),
)

_EVENT_DEPS: Final = Table(
    "event_deps",
    (Column("upstream", "text", not_null=True), Column("event", "text", not_null=True)),
    pk=("upstream", "event"),
)

_RUNS: Final = Table(
    "runs",
    (
        Column("id", "id"),
        Column("event", "text", not_null=True),
        Column("state", "text", not_null=True),
        Column("trigger", "text", not_null=True),
        Column("triggered_by", "text"),
        Column("attempt", "int", not_null=True, default=1),
        Column("repeats_run_id", "int"),
        Column("scheduled_for", "text", not_null=True),
        Column("created_at", "text", not_null=True),
        Column("not_before", "text"),
        Column("window_open", "text"),
        Column("due_by", "text"),
        Column("late_at", "text"),
        Column("needs_prepare", "int", not_null=True, default=0),
        Column("started_at", "text"),
        Column("ended_at", "text"),
        Column("exit_code", "int"),
        Column("reason", "text"),
        Column("output_tail", "text"),
        Column("waiting_reason", "text"),
        Column("pid", "int"),
        Column("host", "text"),
        Column("log_path", "text"),
        Column("checks", "text"),
        Column("flags", "text"),
    ),
)

_ALERTS: Final = Table(
    "alerts",
    (
        Column("id", "id"),
        Column("kind", "text", not_null=True),
        Column("event", "text", not_null=True),
        Column("run_id", "int"),
        Column("route", "text"),
        Column("message", "text", not_null=True),
        Column("status", "text", not_null=True, default="open"),
        Column("count", "int", not_null=True, default=1),
        Column("created_at", "text", not_null=True),
        Column("updated_at", "text", not_null=True),
        Column("acknowledged_by", "text"),
        Column("acknowledged_at", "text"),
        Column("resolved_at", "text"),
        Column("pending", "int", not_null=True, default=1),
        Column("next_attempt_at", "text"),
        Column("attempts", "int", not_null=True, default=0),
        Column("delivered_at", "text"),
        Column("pages", "int", not_null=True, default=0),
        Column("escalated_at", "text"),
        Column("failures", "int", not_null=True, default=0),
        Column("next_page_at", "text"),
        Column("held", "text"),
        Column("held_since", "text"),
    ),
)

_DELIVERIES: Final = Table(
    "deliveries",
    (
        Column("id", "id"),
        Column("alert_id", "int", not_null=True),
        Column("attempted_at", "text", not_null=True),
        Column("route", "text"),
        Column("target", "text"),
        Column("outcome", "text", not_null=True),
        Column("error", "text"),
        Column("page", "int"),
    ),
)

_REQUESTS: Final = Table(
    "requests",
    (
        Column("id", "id"),
        Column("verb", "text", not_null=True),
        Column("target", "text", not_null=True),
        Column("args", "text"),
        Column("requested_by", "text"),
        Column("dedupe_key", "text"),
        Column("requested_at", "text", not_null=True, default=NOW),
        Column("handled_at", "text"),
        Column("outcome", "text"),
        Column("detail", "text"),
    ),
)

_ENGINE: Final = Table(
    "engine",
    (
        Column("id", "int"),
        Column("pid", "int"),
        Column("host", "text"),
        Column("started_at", "text"),
        Column("heartbeat_at", "text"),
        Column("stopped_at", "text"),
        Column("tick_s", "real"),
        Column("version", "text"),
    ),
)
"""One row, id 1 (SQLite: the engine that drives the file)."""

_ACTIVE: Final = "state IN ('waiting', 'running')"

_V1: Final = Step(
    "the tables of evman 0.1",
    (
        _EVENTS,
        Index("events_due", "events", ("next_fire_at",), where="next_fire_at IS NOT NULL AND defined = 1"),
        _EVENT_DEPS,
        _RUNS,
        Index("runs_occurrence", "runs", ("event", "scheduled_for", "attempt"), unique=True),
        Index("runs_active", "runs", ("state",), where=_ACTIVE),
        Index("runs_event_active", "runs", ("event", "id"), where=_ACTIVE),
        Index("runs_event", "runs", ("event", "id")),
        Index("runs_event_ended", "runs", ("event", "ended_at"), where="ended_at IS NOT NULL"),
        _ALERTS,
        Index("alerts_open", "alerts", ("event", "kind"), unique=True, where="status = 'open'"),
        Index("alerts_pending", "alerts", ("next_attempt_at",), where="pending = 1"),
        Index("alerts_event", "alerts", ("event", "id")),
        _DELIVERIES,
        Index("deliveries_alert", "deliveries", ("alert_id",)),
        _REQUESTS,
        Index("requests_open", "requests", ("id",), where="handled_at IS NULL"),
        Index("requests_dedupe", "requests", ("dedupe_key",), where="dedupe_key IS NOT NULL"),
        _ENGINE,
        Table("routes", (Column("name", "text"), Column("spec", "text", not_null=True)), pk=("name",)),
        Table("settings", (Column("key", "text"), Column("value", "text")), pk=("key",)),
        Seed("settings", ({"key": "defs_version", "value": "0"},)),
    ),
)

_V2_HOLD_UNTIL: Final = Step(
    "hold --until, and the calendar that shapes an event",
    (
        AddColumn("events", Column("held_until", "text")),
        Index("events_held_until", "events", ("held_until",), where="held_until IS NOT NULL"),
        AddColumn("events", Column("calendar", "text")),
        Index("events_calendar", "events", ("name",), where="calendar IS NOT NULL"),
    ),
)
"""`evman hold E --until TIME`: when the engine releases the hold by itself (UTC ISO, NULL: never);
the calendar that shapes an event's fire times (its name; '' for business days on the default
calendar; NULL: none), so the AutoSys-trap watch reads only those rows."""

_V3_RETENTION: Final = Step(
    "retention: pruned logs, and the indexes housekeeping reads the oldest rows by",
    (
        AddColumn("runs", Column("log_pruned_at", "text")),
        Index("runs_log_kept", "runs", ("event", "ended_at"), where="log_pruned_at IS NULL AND ended_at IS NOT NULL"),
        Index("requests_handled", "requests", ("handled_at",), where="handled_at IS NOT NULL"),
        Index("alerts_resolved", "alerts", ("resolved_at",), where="resolved_at IS NOT NULL"),
        Index("deliveries_attempted", "deliveries", ("attempted_at",)),
        Table(
            "pruned_logs",
            (Column("run_id", "int"), Column("log_path", "text", not_null=True), Column("host", "text")),
            pk=("run_id",),
        ),
        Seed("settings", ({"key": "housekeeping_at", "value": None},)),
    ),
)
"""Retention: when a run's log file was deleted (runs.log_pruned_at; the row stays until the runs
horizon), the indexes a housekeeping pass reads its oldest rows by, and `pruned_logs`: the files a
pass has marked pruned but may not have unlinked yet (a pass killed between its commit and its
unlinks finishes them next time)."""

_V4_COORDINATION: Final = Step(
    "coordination: pools, run parameters, approvals, groups",
    (
        AddColumn("runs", Column("pools", "text")),
        AddColumn("runs", Column("params", "text")),
        AddColumn("runs", Column("approval", "text")),
        Index("runs_pools", "runs", ("id",), where="pools IS NOT NULL AND state IN ('waiting', 'running')"),
        AddColumn("events", Column("group_name", "text")),
        Index("events_group", "events", ("group_name", "name"), where="group_name IS NOT NULL"),
        Table("pools", (Column("name", "text"), Column("size", "int", not_null=True)), pk=("name",)),
    ),
)
"""Coordination. runs.pools: the slots a run takes ("warehouse=1,db=2"): on a waiting run, it is
in line for them (ready but for the pools); on a running one, it holds them (partial index: the
holders and the line, whatever the size of the table). runs.params: its run parameters (JSON
object). runs.approval: who was asked when, and who approved or rejected it with which comment
(JSON object). events.group_name: the event's group, so `group:NAME` reads only its members.
pools: `[pools]` as loaded; several engines lock a pool's row while one of them starts its runs."""

MIGRATIONS: Final[Sequence[Step]] = (_V1, _V2_HOLD_UNTIL, _V3_RETENTION, _V4_COORDINATION)
"""MIGRATIONS[i] takes a database from schema version i to i + 1. Append a step to change the
schema (HACKING.md, "Changing the schema"); never edit one that has shipped."""

check(MIGRATIONS)  # a step one backend could not apply fails here, at import, saying why
SCHEMA_VERSION: Final = len(MIGRATIONS)

RUN_COLUMNS: Final = columns_after(MIGRATIONS, "runs")
"""The runs table's columns in order, as every step leaves them (the engine writes runs by them)."""
