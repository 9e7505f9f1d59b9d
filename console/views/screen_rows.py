"""What the console's screens show: its rows read from the store (events a page at a time,
late runs, trees, what changed), and their cells, order and filters. The CLI's JSON and text
are console/views/contract.py; this module is the console's alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from evman.console.views.contract import NO_ROUTE, event_state, run_json
from evman.console.views.contract import SHOWN_STATES as SHOWN_STATES
from evman.console.views.contract import STATE_SYMBOLS as STATE_SYMBOLS  # the screens' one place for states
from evman.engine.store import Store
from evman.engine.vocabulary import ACTIVE_STATES, FAILED_STATES, AlertKind, RunState, alert_facts

WAITING, RUNNING, MISSED = RunState.WAITING, RunState.RUNNING, RunState.MISSED
"""Bound once: a member looked up on its Enum class costs five string comparisons, and the
cells below are computed for 10,000 rows at a time."""
BAD_STATES = FAILED_STATES | {MISSED}
"""The ends whose reason the events table shows."""
STATE_TONES = {state: look.tone for state, look in SHOWN_STATES.items()}
TONE_RANK = {"bad": 0, "warn": 1, "active": 2, "wait": 3, "ok": 4, "plain": 5, "muted": 6}
Cell = tuple[str, str]
FIRST_PAGE: Final = 120
"""Events read (by name) and painted before the rest: more than a tall terminal shows."""


def console_event_rows(
    store: Store, names: list[str] | None = None, *, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The console's rows: events with their latest run and, when that run is still active,
    the last finished one (`last_*` keys) for the "last run" column. `names`: only these;
    `limit`: a page of up to `limit` events by name, those after `after`."""
    rows = store.console_events_page(after, limit) if limit is not None else store.console_events(names)
    active = [r["name"] for r in rows if r["run_state"] in ACTIVE_STATES]
    finished = store.last_finished_runs(active) if active else {}
    for r in rows:
        last = (
            finished.get(r["name"])
            if r["run_state"] in ACTIVE_STATES
            else (
                {
                    "id": r["run_id"],
                    "state": r["run_state"],
                    "started_at": r["started_at"],
                    "ended_at": r["ended_at"],
                    "exit_code": r["exit_code"],
                }
                if r["run_id"]
                else None
            )
        )
        r["last_id"] = (last or {}).get("id")
        r["last_state"] = (last or {}).get("state")
        r["last_started_at"] = (last or {}).get("started_at")
        r["last_ended_at"] = (last or {}).get("ended_at")
        r["find_text"] = f"{r['name'].lower()}\t{(r.get('driver') or '').lower()}"  # for row_filter
    return rows


def has_active_run(store: Store, target: str) -> bool:
    """Whether a kill of `target` (an event, or run:N) finds a waiting or running run."""
    if target.startswith("run:"):
        run = store.run(int(target.split(":", 1)[1]))
        return run is not None and run["state"] in ACTIVE_STATES
    return any(r["run_state"] in ACTIVE_STATES for r in store.console_events([target]))


def shown_state(row: dict[str, Any]) -> str:
    """The state the console shows: a held event reads "held" unless a run is running."""
    state = event_state(row)
    if row.get("held") and state != RUNNING:
        return "held"
    return state


def _at(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    value = datetime.fromisoformat(stamp)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def seconds_since(stamp: str | None, now: datetime) -> float | None:
    at = _at(stamp)
    return None if at is None else (now - at).total_seconds()


def age(seconds: float) -> str:
    """One unit, rounded down: "45s", "12m", "3h", "2d"."""
    seconds = max(0, int(seconds))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def since(stamp: str | None, now: datetime) -> str:
    at = _at(stamp)
    return "-" if at is None else f"{age((now - at).total_seconds())} ago"


def until(stamp: str | None, now: datetime) -> str:
    at = _at(stamp)
    if at is None:
        return "-"
    left = (at - now).total_seconds()
    return "due" if left <= 0 else f"in {age(left)}"


def span(seconds: float | None) -> str:
    from evman.engine.timing.durations import format_duration

    return "-" if seconds is None else format_duration(max(0.0, seconds))


def state_cell(row: dict[str, Any]) -> Cell:
    state = shown_state(row)
    return f"{STATE_SYMBOLS.get(state, ' ')} {state}", STATE_TONES.get(state, "plain")


def next_cell(row: dict[str, Any], now: datetime) -> Cell:
    if row.get("next_fire_at"):
        return until(row["next_fire_at"], now), "plain"
    if row.get("schedule") == "@reboot":
        return "@reboot", "muted"
    return ("on cond" if row.get("requires") else "-"), "muted"


def last_cell(row: dict[str, Any], now: datetime) -> Cell:
    state = row.get("last_state")
    if not state:
        return "never", "muted"
    ended = row.get("last_ended_at") or row.get("last_started_at")
    return f"{STATE_SYMBOLS.get(state, ' ')} {since(ended, now)}", STATE_TONES.get(state, "plain")


def runtime_cell(row: dict[str, Any], now: datetime) -> Cell:
    """A running run: elapsed against its bounds ("1m05s/10m"); else the last run's length."""
    low, high = row.get("runtime_min_s"), row.get("runtime_max_s")
    flags = set((row.get("flags") or "").split(","))
    if row.get("run_state") == RUNNING and row.get("started_at"):
        took = (now - _at(row["started_at"])).total_seconds()  # type: ignore[operator]
        text = span(took) + (f"/{span(high)}" if high is not None else "")
        tone = "bad" if (high is not None and took >= high) or "overrun" in flags else "active"
        return text, tone
    start, end = _at(row.get("last_started_at")), _at(row.get("last_ended_at"))
    if start is None or end is None:
        return "-", "muted"
    took = (end - start).total_seconds()
    outside = (high is not None and took >= high) or (low is not None and took < low)
    return span(took), "warn" if outside else "muted"


def window_cell(row: dict[str, Any], now: datetime) -> Cell:
    """On time, late, overdue or missed, for the latest run; "-" when it has no window."""
    state = row.get("run_state")
    if state == MISSED:
        return "missed", "bad"
    flags = row.get("flags") or ""
    flags = set(flags.split(",")) if flags else set()
    has_bounds = bool(row.get("due_by") or row.get("late_at"))
    if state == RUNNING:  # times are parsed only where the clock decides (10,000 rows sort by this)
        due = _at(row.get("due_by"))
        if "overdue" in flags or (due is not None and now >= due):
            return "overdue", "bad"
    if state == WAITING:
        late = _at(row.get("late_at"))
        if "late" in flags or (late is not None and now >= late):
            return f"late {age((now - late).total_seconds())}" if late else "late", "warn"
    if state in ACTIVE_STATES:
        return ("on time", "ok") if has_bounds else ("-", "muted")
    if "overdue" in flags:
        return "overdue", "warn"
    if "late" in flags:
        return "late", "warn"
    return ("on time", "muted") if has_bounds else ("-", "muted")


def kind_tone(kind: str) -> str:
    """The tone of an alert kind (model.ALERT_KINDS); "bad" for a kind this version does not know."""
    facts = alert_facts(kind)
    return "bad" if facts is None else facts.tone


def alerts_cell(row: dict[str, Any]) -> Cell:
    count = int(row.get("open_alerts") or 0)
    return (f"⚠ {count}", "bad") if count else ("", "muted")


def why_cell(row: dict[str, Any]) -> Cell:
    """Why it waits, why it failed, who holds it: the last, widest column."""
    if row.get("held"):
        return f"held by {row.get('held_by') or 'someone'}", "warn"
    state = row.get("run_state")
    if state == WAITING and row.get("waiting_reason"):
        return str(row["waiting_reason"]), "muted"
    if state in BAD_STATES and row.get("reason"):
        return str(row["reason"]), "bad"
    return "", "muted"


def event_cells(row: dict[str, Any], now: datetime, slack: Cell | None = None) -> dict[str, Cell]:
    """Every column of the console's event table, keyed by column; `slack` from the plan."""
    return {
        "slack": slack or ("", "muted"),
        "state": state_cell(row),
        "name": (row["name"], "plain"),
        "next": next_cell(row, now),
        "last": last_cell(row, now),
        "runtime": runtime_cell(row, now),
        "window": window_cell(row, now),
        "alerts": alerts_cell(row),
        "driver": (row.get("driver") or "-", "muted" if not row.get("driver") else "plain"),
        "why": why_cell(row),
    }


def event_note(row: dict[str, Any]) -> str:
    """One line on the selected event: why it waits, why it failed, who holds it."""
    state = shown_state(row)
    parts = [row["name"], state]
    if row.get("held"):
        parts.append(f"held by {row.get('held_by') or 'someone'}")
    if row.get("run_state") == WAITING and row.get("waiting_reason"):
        parts.append(f"waiting: {row['waiting_reason']}")
    elif row.get("run_state") in BAD_STATES and row.get("reason"):
        parts.append(str(row["reason"]))
    if row.get("schedule"):
        parts.append(f"schedule {row['schedule']}")
    if row.get("requires"):
        parts.append(f"requires {row['requires']}")
    return " · ".join(parts)


def sort_key(column: str, row: dict[str, Any], now: datetime) -> tuple[Any, ...]:
    """Sort order for a column of the event table; the name breaks ties."""
    name = row["name"]
    if column == "state":
        return (TONE_RANK.get(STATE_TONES.get(shown_state(row), "plain"), 9), shown_state(row), name)
    if column == "next":
        return (row.get("next_fire_at") is None, row.get("next_fire_at") or "", name)
    if column == "last":
        return (row.get("last_ended_at") is None, _neg(row.get("last_ended_at")), name)
    if column == "runtime":
        start = row.get("started_at") if row.get("run_state") == RUNNING else None
        return (start is None, start or "", name)
    if column == "window":
        return (TONE_RANK.get(window_cell(row, now)[1], 9), name)
    if column == "alerts":
        return (-int(row.get("open_alerts") or 0), name)
    if column == "driver":
        return (row.get("driver") or "~", name)
    return (name,)


def _neg(stamp: str | None) -> str:
    """Sorts ISO stamps newest first: complement each character."""
    return "".join(chr(0x10FFFF - ord(c)) for c in (stamp or ""))


def matches_filter(row: dict[str, Any], query: str) -> bool:
    """Every word must match: `state:failed`, `driver:ops`, `name:feed`, or plain words that
    match the name, the state (or "held") or the driver."""
    return row_filter(query)(row)


def row_filter(query: str) -> Callable[[dict[str, Any]], bool]:
    """matches_filter with the query parsed once, for 10,000 rows."""
    fields: list[tuple[str, str]] = []
    words: list[str] = []
    for word in query.lower().split():
        key, sep, value = word.partition(":")
        if sep and key in ("state", "driver", "name"):
            fields.append((key, value))
        else:
            words.append(word)

    def field(row: dict[str, Any], key: str) -> str:
        return shown_state(row) if key == "state" else (row.get(key) or "").lower()

    def keeps(row: dict[str, Any]) -> bool:
        for key, value in fields:
            if value not in field(row, key):
                return False
        if not words:
            return True
        state = shown_state(row)
        find = row.get("find_text") or f"{row['name'].lower()}\t{(row.get('driver') or '').lower()}"
        return all(word in find or state.startswith(word) for word in words)

    return keeps


def dependency_tree(store: Store, name: str, *, max_nodes: int = 400) -> dict[str, Any]:
    """`name` with what it needs (events its `requires` names, recursively) and what follows it
    (on_success, on_failure triggers, events whose `requires` names it). An event met a second
    time in the same direction is a leaf with `repeat` set: a diamond is drawn once."""
    from evman.engine.definitions import spec_from_json

    specs: dict[str, Any] = {}

    def spec(event: str) -> Any:
        if event not in specs:
            found = store.event_specs([event]).get(event)
            specs[event] = None if found is None else spec_from_json(found[0])
        return specs[event]

    def up(event: str) -> list[tuple[str, str]]:
        return [(u, "requires") for u in sorted(store.upstreams(event))]

    def down(event: str) -> list[tuple[str, str]]:
        s = spec(event)
        edges = [(n, "on success") for n in (s.on_success if s else ())]
        edges += [(n, "on failure") for n in (s.on_failure.trigger if s else ())]
        edges += [(n, "requires it") for n in sorted(store.dependents(event))]
        merged: dict[str, list[str]] = {}
        for child, relation in edges:  # one node per child: "on success, requires it"
            merged.setdefault(child, []).append(relation)
        return [(child, ", ".join(relations)) for child, relations in merged.items()]

    budget = [max_nodes]
    upstream = _grow(name, up, {name}, budget)
    downstream = _grow(name, down, {name}, budget)
    names = {name} | _names_in(upstream) | _names_in(downstream)
    rows = {r["name"]: r for r in console_event_rows(store, sorted(names))}
    root_spec = spec(name)
    return {
        "name": name,
        "requires": root_spec.requires if root_spec else None,
        "upstream": upstream,
        "downstream": downstream,
        "rows": rows,
        "truncated": budget[0] <= 0,
    }


def _grow(event: str, edges: Any, seen: set[str], budget: list[int]) -> list[dict[str, Any]]:
    nodes = []
    for child, relation in edges(event):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        node: dict[str, Any] = {"name": child, "relation": relation, "repeat": child in seen, "children": []}
        nodes.append(node)
        if not node["repeat"]:
            seen.add(child)
            node["children"] = _grow(child, edges, seen, budget)
    return nodes


def _names_in(nodes: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        out.add(node["name"])
        out |= _names_in(node["children"])
    return out


def tree_label(row: dict[str, Any] | None, name: str) -> Cell:
    """A tree node: symbol, name, state, and why it waits (or why it failed)."""
    if row is None:
        return f"? {name} (not defined)", "muted"
    text, tone = state_cell(row)
    symbol, state = text.split(" ", 1)
    why = ""
    if row.get("run_state") == WAITING and row.get("waiting_reason"):
        why = f" — {row['waiting_reason']}"
    elif row.get("run_state") in BAD_STATES and row.get("reason"):
        why = f" — {row['reason']}"
    return f"{symbol} {name}  {state}{why}", tone


def attention_list(store: Store, now: datetime, *, missed_hours: float = 24.0) -> list[dict[str, Any]]:
    """Runs that are late, overdue, over their normal maximum, or missed in the last
    `missed_hours`, each with `kind`, `late_s` (how late) and `deadline`, most late first."""
    from datetime import timedelta

    out = []
    since = now - timedelta(hours=missed_hours)
    for run in store.attention_runs(now, missed_since=since):
        if run["state"] == MISSED and _missed_before(run, since):
            continue
        found = _lateness(run, now)
        if found is not None:
            kind, late_s, deadline = found
            out.append(
                {
                    **run_json(run),
                    "kind": kind,
                    "late_s": late_s,
                    "deadline": deadline,
                    "runtime_max_s": run.get("runtime_max_s"),
                }
            )
    out.sort(key=lambda r: (-r["late_s"], r["id"]))
    return out


def _missed_before(run: dict[str, Any], since: datetime) -> bool:
    """A missed run belongs to the time its window closed (due_by), not to when an engine
    noticed it: a catch-up after months records old slots as missed now."""
    closed = _at(run.get("due_by")) or _at(run.get("ended_at"))
    return closed is not None and closed < since


def _lateness(run: dict[str, Any], now: datetime) -> tuple[str, float, str | None] | None:
    due = _at(run.get("due_by"))
    if run["state"] == MISSED:  # most of the list: parse no more than its deadline
        return AlertKind.MISSED, (now - (due or _at(run.get("ended_at")) or now)).total_seconds(), run.get("due_by")
    flags = set((run.get("flags") or "").split(","))
    late, start = _at(run.get("late_at")), _at(run.get("started_at"))
    if run["state"] == RUNNING:
        if due is not None and now >= due:
            return AlertKind.OVERDUE, (now - due).total_seconds(), run.get("due_by")
        high = run.get("runtime_max_s")
        if start is not None and high is not None and (now - start).total_seconds() >= high:
            return AlertKind.OVERRUN, (now - start).total_seconds() - high, None
        if "overrun" in flags or "overdue" in flags:
            return (AlertKind.OVERDUE if "overdue" in flags else AlertKind.OVERRUN), 0.0, run.get("due_by")
        return None
    if late is not None and now >= late:
        return AlertKind.LATE, (now - late).total_seconds(), run.get("late_at")
    if "late" in flags:
        return AlertKind.LATE, 0.0, run.get("late_at")
    return None


def changed_events(old: dict[str, Any], new: dict[str, Any]) -> tuple[set[str], bool]:
    """From two Store.watch_marks(): the events whose rows changed, and whether the
    definitions did (then the console re-reads every event)."""
    definitions = old.get("defs_version") != new.get("defs_version")
    if "max_run_id" not in old or "max_run_id" not in new:
        return set(), definitions
    events: set[str] = set()
    for key in ("active", "alerts"):
        before, after = old[key], new[key]
        for item in before.keys() | after.keys():
            if before.get(item) != after.get(item):
                events.add((after.get(item) or before.get(item))[0])
    events |= old["held"] ^ new["held"]
    if new["max_run_id"] != old["max_run_id"]:
        events.add(f"runs-after:{old['max_run_id']}")
    return events, definitions


def resolve_targets(store: Store, tokens: set[str]) -> set[str]:
    """Event names for change tokens: names, request targets (run:N, alert:N, group:NAME) and
    `runs-after:N` (every event with a run newer than N)."""
    names: set[str] = set()
    for token in tokens:
        if token.startswith("runs-after:"):
            names |= store.events_with_runs_after(int(token.split(":", 1)[1]))
        elif token.startswith("group:"):
            names |= set(store.group_members(token[6:]))
        else:
            names.add(store.event_of(token) or token)
    return names


def local_time(stamp: str | None, zone: Any, now: datetime | None = None, *, exact: bool = False) -> str:
    """A stored UTC stamp in `zone`: "14:30:05" on `now`'s day, else "01-05 14:30" (with
    `exact`, "01-05 14:30:08" when the seconds are not zero)."""
    at = _at(stamp)
    if at is None:
        return "-"
    local = at.astimezone(zone)
    if now is not None and local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M:%S" if exact and local.second else "%m-%d %H:%M")


def resolved_bounds(store: Store, name: str, slot: str | None) -> dict[str, Any] | None:
    """The window of `name`'s run scheduled for `slot` as times (UTC ISO): open_at, due_by,
    late_at, and the slot itself; None without a slot or a definition."""
    from evman.engine.definitions import spec_from_json
    from evman.engine.timing.windows import bounds_for

    row = store.event_row(name)
    at = _at(slot)
    if row is None or at is None or not row.get("spec"):
        return None
    from evman.engine.clock import iso

    b = bounds_for(spec_from_json(row["spec"]), at)
    return {"slot": slot, "open_at": iso(b.open_at), "due_by": iso(b.due_by), "late_at": iso(b.late_at)}


def delivery_cell(alert: dict[str, Any]) -> Cell:
    """The console's Delivery cell: the outcome, short enough for its column."""
    outcome = alert["outcome"]
    if outcome.startswith("failing"):
        return f"failing ×{len(alert['deliveries'])}", "warn"
    return outcome, "warn" if outcome == NO_ROUTE else "muted"
