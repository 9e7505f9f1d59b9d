"""The events, their dependency edges, routes and settings: what `load` writes and the tick reads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from evman.engine.clock import iso
from evman.engine.store.part import Part, Row, in_chunks

EVENT_COLUMNS: Final = ("name", "spec", "kind", "schedule", "timezone", "driver", "requires", "next_fire_at", "source")
"""What `load` writes of an event (the rest is the engine's: held, created_at, ...)."""


def _event_values(ev: Mapping[str, Any]) -> dict[str, Any]:
    """The events columns `load` writes, `calendar` derived from the spec."""
    return {
        **{c: ev[c] for c in EVENT_COLUMNS},
        "calendar": _calendar_column(str(ev["spec"]), ev["schedule"]),
        "group_name": _group_column(str(ev["spec"])),
    }


def _calendar_part(spec: str) -> tuple[object, object]:
    """What of a stored spec moves its fire times besides schedule and zone: calendar, on_holiday."""
    try:
        data = json.loads(spec)
    except ValueError:
        return None, None
    return (data.get("calendar"), data.get("on_holiday")) if isinstance(data, dict) else (None, None)


def _calendar_column(spec: str, schedule: object) -> str | None:
    """events.calendar: the calendar's name, '' for a business-day schedule on the default
    (Monday to Friday) calendar, NULL for an event no calendar shapes (partial index: the
    AutoSys-trap watch reads only these rows)."""
    calendar, _ = _calendar_part(spec)
    if isinstance(calendar, dict):
        return str(calendar.get("name") or "")
    if calendar is not None:
        return str(calendar)
    return "" if "business day" in str(schedule or "") else None


def _group_column(spec: str) -> str | None:
    """events.group_name: the event's `group` (partial index: group:NAME reads only its members)."""
    try:
        data = json.loads(spec)
    except ValueError:
        return None
    group = data.get("group") if isinstance(data, dict) else None
    return str(group) if group else None


def _sort_events(
    events: Sequence[Mapping[str, Any]], existing: Mapping[str, Row], result: dict[str, list[str]]
) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
    """(the new events, the changed ones as whole rows to upsert: what the engine wrote, held
    and held_by, is left alone); names go into `result`. A changed event keeps its creation
    time, and its next fire time unless its timing changed or it was pruned."""
    added: list[Mapping[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for ev in events:
        name, old = str(ev["name"]), existing.get(str(ev["name"]))
        if old is None:
            added.append(ev)
            result["added"].append(name)
        elif old["spec"] == ev["spec"] and old["defined"]:
            result["unchanged"].append(name)
        else:
            same_timing = (
                old["schedule"] == ev["schedule"]
                and old["timezone"] == ev["timezone"]
                and _calendar_part(old["spec"]) == _calendar_part(str(ev["spec"]))
            )
            keep = same_timing and old["defined"]
            next_fire_at = old["next_fire_at"] if keep else ev["next_fire_at"]
            changed.append({**_event_values(ev), "next_fire_at": next_fire_at, "created_at": old["created_at"]})
            result["changed"].append(name)
    return added, changed


BUMP_HOLDS: Final = (
    "INSERT INTO settings (key, value) VALUES ('holds_version', '1') ON CONFLICT(key) "
    "DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)"
)
"""Written with every hold and release: an engine that caches holds reads them again."""
DUE_CLAIM_ONE: Final = 10_000
DUE_CLAIM_SEVERAL: Final = 1000


class EventsPart(Part):
    # -- settings --------------------------------------------------------------

    def setting(self, key: str) -> str | None:
        value = self.value("SELECT value FROM settings WHERE key = ?", (key,))
        return None if value is None else str(value)

    def defs_version(self) -> int:
        return int(self.setting("defs_version") or 0)

    def versions(self) -> tuple[int, int]:
        """(defs_version, holds_version) in one read: what a tick asks before it trusts its caches."""
        found = {
            str(r[0]): int(r[1] or 0)
            for r in self.rows("SELECT key, value FROM settings WHERE key IN ('defs_version', 'holds_version')")
        }
        return found.get("defs_version", 0), found.get("holds_version", 0)

    def held_events(self) -> set[str]:
        return {str(r[0]) for r in self.rows("SELECT name FROM events WHERE held = 1")}

    def hold_ends(self) -> dict[str, str]:
        """event -> when its hold ends by itself, for the held events that have an end."""
        return {
            str(r[0]): str(r[1])
            for r in self.rows("SELECT name, held_until FROM events WHERE held_until IS NOT NULL AND held = 1")
        }

    def runs_scheduled_between(self, event: str, start: str, end: str) -> set[str]:
        """scheduled_for of every run of `event` in [start, end] (the unique key's instants)."""
        return {
            str(r[0])
            for r in self.rows(
                "SELECT scheduled_for FROM runs WHERE event = ? AND scheduled_for >= ? AND scheduled_for <= ?",
                (event, start, end),
            )
        }

    def defaults_json(self) -> str | None:
        return self.setting("defaults")

    def routes_json(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.rows("SELECT name, spec FROM routes")}

    # -- saving definitions ----------------------------------------------------

    def save_definitions(
        self,
        events: Sequence[Mapping[str, Any]],
        deps: Iterable[tuple[str, str]],
        routes: Mapping[str, str],
        defaults_json: str,
        *,
        prune: bool,
        now: datetime,
        named: Mapping[str, Mapping[str, str]] | None = None,
        pools: Mapping[str, int] | None = None,
    ) -> dict[str, list[str]]:
        """Upsert events (a dict per event with the events columns), replace deps and routes.

        `named`: settings kept as JSON objects of name -> JSON text ("calendars", "blackouts"),
        merged by name; with `prune`, replaced by these. `pools`: `[pools]`, the same way.

        A changed schedule takes effect from now on: the caller passes next_fire_at computed
        from now for events whose schedule changed or which are new; unchanged events keep theirs.
        Returns {"added": [...], "changed": [...], "unchanged": [...], "pruned": [...]}.
        """
        stamp = iso(now)
        result: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": [], "pruned": []}
        with self.transaction():
            existing = {
                r["name"]: r
                for r in self.rows(
                    "SELECT name, spec, schedule, timezone, defined, next_fire_at, created_at FROM events"
                )
            }
            added, changed = _sort_events(events, existing, result)
            self.insert_rows(
                "events", [{**_event_values(ev), "created_at": stamp, "updated_at": stamp} for ev in added]
            )
            self.upsert_rows("events", [{**ev, "defined": 1, "updated_at": stamp} for ev in changed], "name")
            names = [str(ev["name"]) for ev in events]
            if prune:
                result["pruned"] = self._prune(existing, set(names), stamp)
            self._save_links(names, deps, routes, defaults_json)
            for key, entries in (named or {}).items():
                self._save_named(key, entries, replace=prune)
            if pools is not None:
                self._save_pools(pools, replace=prune)
        return result

    def named_setting(self, key: str) -> dict[str, str]:
        """A setting kept as a JSON object of name -> JSON text ({} when absent)."""
        text = self.setting(key)
        found = json.loads(text) if text else {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _save_named(self, key: str, entries: Mapping[str, str], *, replace: bool) -> None:
        merged = {} if replace else self.named_setting(key)
        merged.update(entries)
        self.upsert_rows("settings", [{"key": key, "value": json.dumps(merged, sort_keys=True)}], "key")

    def _save_pools(self, pools: Mapping[str, int], *, replace: bool) -> None:
        """Upsert `[pools]`; with `replace`, drop the others."""
        if replace:
            kept = list(pools)
            if kept:
                marks = ", ".join("?" for _ in kept)
                self.execute(f"DELETE FROM pools WHERE name NOT IN ({marks})", kept)
            else:
                self.execute("DELETE FROM pools")
        self.upsert_rows("pools", [{"name": n, "size": size} for n, size in pools.items()], "name")

    def _prune(self, existing: Mapping[str, Row], kept: set[str], stamp: str | None) -> list[str]:
        gone = sorted(n for n, r in existing.items() if n not in kept and r["defined"])
        self.update_rows(
            "events", [{"name": n, "defined": 0, "next_fire_at": None, "updated_at": stamp} for n in gone], "name"
        )
        return gone

    def _save_links(
        self, names: Sequence[str], deps: Iterable[tuple[str, str]], routes: Mapping[str, str], defaults_json: str
    ) -> None:
        self.delete_rows("event_deps", "event", names)
        self.insert_rows("event_deps", [{"upstream": u, "event": e} for u, e in deps], ignore=True)
        self.upsert_rows("routes", [{"name": n, "spec": spec} for n, spec in routes.items()], "name")
        self.upsert_rows("settings", [{"key": "defaults", "value": defaults_json}], "key")
        self.execute("UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'defs_version'")

    # -- reading events ----------------------------------------------------------

    def event_names(self, *, defined_only: bool = True) -> set[str]:
        sql = "SELECT name FROM events" + (" WHERE defined = 1" if defined_only else "")
        return {r[0] for r in self.rows(sql)}

    def event_row(self, name: str) -> dict[str, Any] | None:
        return self.one_dict("SELECT * FROM events WHERE name = ?", (name,))

    def foresight_candidates(self) -> list[Row]:
        """(name, spec) of the defined events foresight may cover: those with a deadline (or a
        window latest, its stand-in) and those that start others on success. One scan of the
        spec text (stored by spec_to_json, json.dumps' separators), read once per definitions."""
        return self.rows(
            'SELECT name, spec FROM events WHERE defined = 1 AND (spec LIKE \'%"deadline": "%\' '
            'OR spec LIKE \'%"latest": "%\' OR spec LIKE \'%"on_success": ["%\') ORDER BY name'
        )

    def calendar_events(self) -> list[str]:
        """The defined events with a calendar or a business-day schedule (the AutoSys-trap
        watch), by name: the partial index events_calendar holds only those rows."""
        return [
            str(r[0])
            for r in self.rows("SELECT name FROM events WHERE calendar IS NOT NULL AND defined = 1 ORDER BY name")
        ]

    def events_by_name(self, names: Sequence[str]) -> list[Row]:
        """(name, spec, held, next_fire_at) of the named defined events."""
        out: list[Row] = []
        for chunk, marks in in_chunks(list(names)):
            out += self.rows(
                f"SELECT name, spec, held, next_fire_at FROM events WHERE defined = 1 AND name IN ({marks})", chunk
            )
        return out

    def defined_events(self) -> list[Row]:
        """(name, spec, held, next_fire_at) of every defined event, by name."""
        return self.rows("SELECT name, spec, held, next_fire_at FROM events WHERE defined = 1 ORDER BY name")

    def event_specs(self, names: Iterable[str]) -> dict[str, tuple[str, int]]:
        """name -> (spec JSON, held) for the named events that are defined."""
        out: dict[str, tuple[str, int]] = {}
        for name in names:
            row = self.row("SELECT spec, held FROM events WHERE name = ? AND defined = 1", (name,))
            if row is not None:
                out[name] = (row[0], int(row[1]))
        return out

    def dependents(self, upstream: str) -> list[str]:
        return [r[0] for r in self.rows("SELECT event FROM event_deps WHERE upstream = ?", (upstream,))]

    def all_dependents(self) -> dict[str, list[str]]:
        """upstream -> the events whose `requires` names it, for every edge."""
        out: dict[str, list[str]] = {}
        for upstream, event in self.rows("SELECT upstream, event FROM event_deps ORDER BY upstream, event"):
            out.setdefault(upstream, []).append(event)
        return out

    def upstreams(self, event: str) -> list[str]:
        return [r[0] for r in self.rows("SELECT upstream FROM event_deps WHERE event = ?", (event,))]

    # -- what is due ---------------------------------------------------------------

    def due_events(self, now: datetime, limit: int = 10_000) -> list[Row]:
        return self.rows(
            "SELECT name, spec, held, next_fire_at FROM events "
            "WHERE next_fire_at IS NOT NULL AND defined = 1 AND next_fire_at <= ? "
            "ORDER BY next_fire_at LIMIT ?",
            (iso(now), limit),
        )

    def claim_due_events(self, now: datetime, limit: int | None = None) -> list[Row]:
        """The due events this engine materialises: on PostgreSQL each is locked until the tick
        commits the runs it made and its next fire time, and other engines skip it. At most
        DUE_CLAIM_ONE (one engine: a burst is one tick, not two) or DUE_CLAIM_SEVERAL per tick
        (several engines: a burst is shared among them)."""
        if limit is None:
            limit = DUE_CLAIM_SEVERAL if self.several_engines else DUE_CLAIM_ONE
        return self.claim(
            "SELECT name, spec, held, next_fire_at FROM events "
            "WHERE next_fire_at IS NOT NULL AND defined = 1 AND next_fire_at <= ? "
            "ORDER BY next_fire_at LIMIT ?",
            (iso(now), limit),
        )

    def lock_events(self, names: Sequence[str]) -> list[str]:
        """Several engines: the rows of these events locked until this tick's flush commits,
        taken before deciding whether runs of them start (stages/start.py); the names locked,
        without those another engine holds now (it is deciding about them: ask next tick).
        One engine: all of them."""
        found: list[str] = []
        for chunk, marks in in_chunks(sorted(set(names))):
            found += [
                str(r[0]) for r in self.claim(f"SELECT name FROM events WHERE name IN ({marks}) ORDER BY name", chunk)
            ]
        return found

    def next_due_at(self) -> str | None:
        value = self.value("SELECT min(next_fire_at) FROM events WHERE next_fire_at IS NOT NULL AND defined = 1")
        return None if value is None else str(value)

    def has_commands(self) -> bool:
        """Whether any defined event runs a process (run, shell): the engine then starts its
        command supervisor at once. Read at engine start, not per tick."""
        return self.value("SELECT 1 FROM events WHERE defined = 1 AND kind IN ('run', 'shell') LIMIT 1") is not None

    def reboot_events(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM events WHERE schedule = '@reboot' AND defined = 1")]
