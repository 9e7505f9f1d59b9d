"""The tables: DDL written once for every dialect, and the migrations between versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

SCHEMA_VERSION: Final = 4

_V1: Final = """
CREATE TABLE events (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    kind TEXT NOT NULL,
    schedule TEXT,
    timezone TEXT NOT NULL,
    driver TEXT,
    requires TEXT,
    held INTEGER NOT NULL DEFAULT 0,
    held_by TEXT,
    next_fire_at TEXT,
    defined INTEGER NOT NULL DEFAULT 1,
    source TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX events_due ON events(next_fire_at) WHERE next_fire_at IS NOT NULL AND defined = 1;

CREATE TABLE event_deps (
    upstream TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (upstream, event)
){options};

CREATE TABLE runs (
    id {id},
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    trigger TEXT NOT NULL,
    triggered_by TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    repeats_run_id INTEGER,
    scheduled_for TEXT NOT NULL,
    created_at TEXT NOT NULL,
    not_before TEXT,
    window_open TEXT,
    due_by TEXT,
    late_at TEXT,
    needs_prepare INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    ended_at TEXT,
    exit_code INTEGER,
    reason TEXT,
    output_tail TEXT,
    waiting_reason TEXT,
    pid INTEGER,
    host TEXT,
    log_path TEXT,
    checks TEXT,
    flags TEXT,
    UNIQUE (event, scheduled_for, attempt)
);
CREATE INDEX runs_active ON runs(state) WHERE state IN ('waiting', 'running');
CREATE INDEX runs_event_active ON runs(event, id) WHERE state IN ('waiting', 'running');
CREATE INDEX runs_event ON runs(event, id);
CREATE INDEX runs_event_ended ON runs(event, ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE alerts (
    id {id},
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    run_id INTEGER,
    route TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    count INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    resolved_at TEXT,
    pending INTEGER NOT NULL DEFAULT 1,
    next_attempt_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    escalated_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_page_at TEXT,
    held TEXT,
    held_since TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts(event, kind) WHERE status = 'open';
CREATE INDEX alerts_pending ON alerts(next_attempt_at) WHERE pending = 1;
CREATE INDEX alerts_event ON alerts(event, id);

CREATE TABLE deliveries (
    id {id},
    alert_id INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    route TEXT,
    target TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    page INTEGER
);
CREATE INDEX deliveries_alert ON deliveries(alert_id);

CREATE TABLE requests (
    id {id},
    verb TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT,
    requested_by TEXT,
    dedupe_key TEXT,
    requested_at TEXT NOT NULL DEFAULT ({now}),
    handled_at TEXT,
    outcome TEXT,
    detail TEXT
);
CREATE INDEX requests_open ON requests(id) WHERE handled_at IS NULL;
CREATE INDEX requests_dedupe ON requests(dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE TABLE engine (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER,
    host TEXT,
    started_at TEXT,
    heartbeat_at TEXT,
    stopped_at TEXT,
    tick_s {real},
    version TEXT
);

CREATE TABLE routes (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT
);
INSERT INTO settings (key, value) VALUES ('defs_version', '0');
"""

_V2_HOLD_UNTIL: Final = """
ALTER TABLE events ADD COLUMN held_until TEXT;
CREATE INDEX events_held_until ON events (held_until) WHERE held_until IS NOT NULL;
ALTER TABLE events ADD COLUMN calendar TEXT;
CREATE INDEX events_calendar ON events (name) WHERE calendar IS NOT NULL;
"""
"""`evman hold E --until TIME`: when the engine releases the hold by itself (UTC ISO, NULL: never);
the calendar that shapes an event's fire times (its name; '' for business days on the default
calendar; NULL: none), so the AutoSys-trap watch reads only those rows."""

_V3_RETENTION: Final = """
ALTER TABLE runs ADD COLUMN log_pruned_at TEXT;
CREATE INDEX runs_log_kept ON runs(event, ended_at) WHERE log_pruned_at IS NULL AND ended_at IS NOT NULL;
CREATE INDEX requests_handled ON requests(handled_at) WHERE handled_at IS NOT NULL;
CREATE INDEX alerts_resolved ON alerts(resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX deliveries_attempted ON deliveries(attempted_at);
CREATE TABLE pruned_logs (
    run_id {int} PRIMARY KEY,
    log_path TEXT NOT NULL,
    host TEXT
){options};
INSERT INTO settings (key, value) VALUES ('housekeeping_at', NULL)
"""
"""Retention (issue 19): when a run's log file was deleted (runs.log_pruned_at; the row stays
until the runs horizon), the indexes a housekeeping pass reads its oldest rows by, and
`pruned_logs`: the files a pass has marked pruned but may not have unlinked yet (a pass killed
between its commit and its unlinks finishes them next time)."""

_V4_COORDINATION: Final = """
ALTER TABLE runs ADD COLUMN pools TEXT;
ALTER TABLE runs ADD COLUMN params TEXT;
ALTER TABLE runs ADD COLUMN approval TEXT;
CREATE INDEX runs_pools ON runs (id) WHERE pools IS NOT NULL AND state IN ('waiting', 'running');
ALTER TABLE events ADD COLUMN group_name TEXT;
CREATE INDEX events_group ON events (group_name, name) WHERE group_name IS NOT NULL;
CREATE TABLE pools (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL
){options};
"""
"""Coordination. runs.pools: the slots a run takes ("warehouse=1,db=2"): on a waiting run, it is
in line for them (ready but for the pools); on a running one, it holds them (partial index: the
holders and the line, whatever the size of the table). runs.params: its run parameters (JSON
object). runs.approval: who was asked when, and who approved or rejected it with which comment
(JSON object). events.group_name: the event's group, so `group:NAME` reads only its members.
pools: `[pools]` as loaded; several engines lock a pool's row while one of them starts its runs."""

MIGRATIONS: Final[Sequence[str]] = (_V1, _V2_HOLD_UNTIL, _V3_RETENTION, _V4_COORDINATION)
"""MIGRATIONS[i] takes a database from schema version i to i + 1; each is a DDL template
(see Dialect.ddl): {id} an integer primary key the database numbers, {real}, {now} the
current UTC time as ISO text, {options} the options of a small key table."""

RUN_COLUMNS: Final = (
    "id",
    "event",
    "state",
    "trigger",
    "triggered_by",
    "attempt",
    "repeats_run_id",
    "scheduled_for",
    "created_at",
    "not_before",
    "window_open",
    "due_by",
    "late_at",
    "needs_prepare",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "output_tail",
    "waiting_reason",
    "pid",
    "host",
    "log_path",
    "checks",
    "flags",
    "pools",
    "params",
    "approval",
)
"""The columns the engine writes when it inserts a run (log_pruned_at is written by housekeeping only)."""
