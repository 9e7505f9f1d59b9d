"""The tables: DDL written once for every dialect, and the migrations between versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

SCHEMA_VERSION: Final = 2

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

MIGRATIONS: Final[Sequence[str]] = (_V1, _V2_HOLD_UNTIL)
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
)
