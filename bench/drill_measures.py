"""What the fleet drill measures from the commands' own ledger and the database, each against
its goal, printed MET or NOT MET (issue 24): occurrences run twice, dedupe keys acted on twice,
logs not where the command wrote, finished runs without their output, lost runs whose command
had ended, overlapping runs of a queue/skip event, @reboot runs per fleet start, SIGTERMed
engines that did not exit 0, requests left unanswered; and issue 22's: the most holders of the
pool of 2 at once, counted from the commands' own ledger lines."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.drill_requests import Sent
from bench.drill_workload import BOOT_EVENT, POOL, POOL_EVENTS, POOL_SIZE, QUEUE_EVENTS, SKIP_EVENTS
from evman.engine.clock import parse_iso


@dataclass(frozen=True)
class Line:
    """One ledger line: a command's start or end."""

    kind: str
    event: str
    scheduled_for: str
    run_id: int
    attempt: int
    pid: int
    supervisor: int
    at: float
    last: str
    """start: where its output went (/proc/self/fd/1); end: its exit code."""


def read_ledger(path: Path) -> list[Line]:
    out = []
    for text in path.read_text(errors="replace").splitlines():
        parts = text.split(",")
        if len(parts) == 9 and parts[0] in ("start", "end") and parts[3].isdigit():
            try:
                out.append(
                    Line(
                        parts[0],
                        parts[1],
                        parts[2],
                        int(parts[3]),
                        int(parts[4]),
                        int(parts[5]),
                        int(parts[6]),
                        float(parts[7]),
                        parts[8],
                    )  # fmt: skip
                )
            except ValueError:
                continue  # a line cut by a SIGKILL mid-write
    return out


@dataclass
class Measures:
    run_twice: list[str] = field(default_factory=list)
    keys_twice: list[str] = field(default_factory=list)
    log_elsewhere: list[str] = field(default_factory=list)
    without_output: list[str] = field(default_factory=list)
    lost_after_end: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    reboot_runs: int = 0
    fleet_starts: int = 0
    term_not_zero: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    pool_most: int = 0
    """The most commands of the pool's events running at once (goal: at most its size)."""
    pool_over: list[str] = field(default_factory=list)
    """Each moment more held the pool than it has slots: who held it; and each command that
    started after its run was recorded ended (it held the pool without a slot)."""
    counts: dict[str, int] = field(default_factory=dict)
    """What each measure looked at (commands, keys, runs ...), so a 0 is read against its base."""

    @property
    def met(self) -> bool:
        return (
            not any(
                (
                    self.run_twice,
                    self.keys_twice,
                    self.log_elsewhere,
                    self.without_output,
                    self.lost_after_end,
                    self.overlaps,
                    self.term_not_zero,
                    self.unanswered,
                )  # fmt: skip
            )
            and self.reboot_runs == self.fleet_starts
            and self.pool_most <= POOL_SIZE
            and not self.pool_over
        )


def measure(
    runs: dict[int, dict[str, Any]],
    requests: list[dict[str, Any]],
    ledger: list[Line],
    sent: Sent,
    *,
    killed_at: dict[int, float],
    fleet_starts: int,
    term_codes: list[tuple[str, int | None]],
) -> Measures:
    """`killed_at`: command pid -> when a "machine died" fault had stopped it, to be killed (its
    end, having no line: it wrote nothing after)."""
    found = Measures(fleet_starts=fleet_starts)
    starts = {line.run_id: line for line in ledger if line.kind == "start"}
    ends = {line.run_id: line for line in ledger if line.kind == "end"}
    found.run_twice = _run_twice(ledger)
    found.keys_twice = _keys_twice(requests, runs)
    found.log_elsewhere = [
        f"run {r}: recorded {runs[r]['log_path']}, its command wrote {s.last}"
        for r, s in starts.items()
        if r in runs and runs[r]["log_path"] != s.last
    ]
    found.without_output = [
        f"run {r} ({runs[r]['event']}, {runs[r]['state']})"
        for r in starts
        if r in runs
        and runs[r]["state"] in ("succeeded", "failed")
        and f"out-{r}" not in (runs[r]["output_tail"] or "")
    ]
    found.lost_after_end = [
        f"run {r} ({runs[r]['event']}): exit {ends[r].last} in its ledger, judged lost: {runs[r]['reason']}"
        for r in ends
        if r in runs and runs[r]["state"] == "lost"
    ]
    found.overlaps = _overlaps(starts, ends, runs, killed_at)
    found.reboot_runs = sum(1 for r in runs.values() if r["event"] == BOOT_EVENT and r["trigger"] == "reboot")
    found.term_not_zero = [f"{who}: exit {code}" for who, code in term_codes if code != 0]
    found.unanswered = [f"request {q['id']} ({q['verb']} {q['target']})" for q in requests if q["handled_at"] is None]
    pool_spans = _spans(starts, ends, runs, killed_at, POOL_EVENTS)
    found.pool_most, found.pool_over = _most_at_once(pool_spans, POOL_SIZE)
    found.pool_over = _after_end(starts, ends, runs) + found.pool_over
    found.counts = {
        "commands": len(starts),
        "keys": len({q["dedupe_key"] for q in requests if q["dedupe_key"]}),
        "repeated keys": len(sent.repeated),
        "interleaved pairs": sent.interleaved,
        "finished runs": sum(1 for r in runs.values() if r["state"] in ("succeeded", "failed")),
        "lost runs": sum(1 for r in runs.values() if r["state"] == "lost"),
        "queue/skip commands": sum(1 for s in starts.values() if s.event in QUEUE_EVENTS + SKIP_EVENTS),
        "requests": len(requests),
        "SIGTERMs": len(term_codes),
        "pool commands": len(pool_spans),
    }
    return found


def _run_twice(ledger: list[Line]) -> list[str]:
    """An occurrence (event, scheduled time) started twice at one attempt, or started again
    after one of its commands ended with exit 0."""
    out = []
    by_occurrence: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for line in sorted(ledger, key=lambda x: x.at):
        by_occurrence[(line.event, line.scheduled_for)].append(line)
    for (event, at), lines in by_occurrence.items():
        attempts: dict[int, int] = {}
        succeeded = None
        for line in lines:
            if line.kind == "end" and line.last == "0":
                succeeded = succeeded or line.run_id
            elif line.kind == "start":
                if line.attempt in attempts:
                    out.append(
                        f"{event} @ {at}: attempt {line.attempt} started by runs {attempts[line.attempt]} and {line.run_id}"
                    )
                elif succeeded is not None:
                    out.append(f"{event} @ {at}: run {line.run_id} started after run {succeeded} exited 0")
                attempts[line.attempt] = line.run_id
    return out


def _keys_twice(requests: list[dict[str, Any]], runs: dict[int, dict[str, Any]]) -> list[str]:
    """A dedupe key answered `ok` more than once, or that made more than one run."""
    ok: dict[str, list[int]] = defaultdict(list)
    key_of = {int(q["id"]): q["dedupe_key"] for q in requests if q["dedupe_key"]}
    for q in requests:
        if q["dedupe_key"] and q["outcome"] == "ok":
            ok[q["dedupe_key"]].append(int(q["id"]))
    made: dict[str, list[int]] = defaultdict(list)
    for run in runs.values():
        by = str(run["triggered_by"] or "")
        if "(request " in by:
            request_id = int(by.rsplit("(request ", 1)[1].rstrip(")"))
            if request_id in key_of:
                made[key_of[request_id]].append(int(run["id"]))
    twice = {k for k, ids in ok.items() if len(ids) > 1} | {k for k, ids in made.items() if len(ids) > 1}
    return [f"{k}: requests {ok.get(k)} answered ok, runs {made.get(k)}" for k in sorted(twice)]


def _overlaps(
    starts: dict[int, Line], ends: dict[int, Line], runs: dict[int, dict[str, Any]], killed_at: dict[int, float]
) -> list[str]:
    """Two commands of one queue/skip event running at the same time."""
    out = []
    spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for start, end, run_id, event in _spans(starts, ends, runs, killed_at, QUEUE_EVENTS + SKIP_EVENTS):
        spans[event].append((start, end, run_id))
    for event, intervals in spans.items():
        intervals.sort()
        for (_, end, first), (begin, _, second) in zip(intervals, intervals[1:], strict=False):
            if begin < end:
                out.append(f"{event}: run {second} started {end - begin:.2f} s before run {first} ended")
    return out


def _spans(
    starts: dict[int, Line],
    ends: dict[int, Line],
    runs: dict[int, dict[str, Any]],
    killed_at: dict[int, float],
    events: tuple[str, ...],
) -> list[tuple[float, float, int, str]]:
    """(began, ended, run id, event) of each command of `events`, from its ledger lines; one with
    no end line ended when a fault killed it, else when its run was recorded ended (else never).

    A kill ends only a command that started before it: a later command with the same pid is
    another process (pids wrap around in a drill on a busy machine; ended at the earlier kill,
    it ended before it began and would be counted holding for ever). A command that started
    after its run was recorded ended ran without its slot, to an end no one saw: never."""
    out = []
    for run_id, start in starts.items():
        if start.event not in events:
            continue
        end = ends[run_id].at if run_id in ends else _killed(start, killed_at)
        if end is None:
            ended = parse_iso(runs.get(run_id, {}).get("ended_at"))
            end = ended.timestamp() if ended is not None and ended.timestamp() >= start.at else float("inf")
        out.append((start.at, end, run_id, start.event))
    return out


def _killed(start: Line, killed_at: dict[int, float]) -> float | None:
    at = killed_at.get(start.pid)
    return at if at is not None and at >= start.at else None


def _after_end(starts: dict[int, Line], ends: dict[int, Line], runs: dict[int, dict[str, Any]]) -> list[str]:
    """Commands of the pool's events that started after their run was recorded ended (the
    slot given back while its command was still to run), and never said they ended."""
    out = []
    for run_id, start in sorted(starts.items()):
        ended = parse_iso(runs.get(run_id, {}).get("ended_at"))
        if start.event in POOL_EVENTS and run_id not in ends and ended is not None and ended.timestamp() < start.at:
            state = runs[run_id]["state"]
            out.append(
                f"{start.event} run {run_id}: its command started at {start.at:.3f}, "
                f"{start.at - ended.timestamp():.3f} s after its run was recorded {state}"
            )
    return out


def _most_at_once(spans: list[tuple[float, float, int, str]], size: int) -> tuple[int, list[str]]:
    """The most spans open at one moment, and each moment more than `size` were (who, from when).
    An end at the very time of a start comes first: the slot was given back, then taken."""
    moments = sorted([(b, 1, r, e) for b, _, r, e in spans] + [(x, -1, r, e) for _, x, r, e in spans])
    holding: dict[int, str] = {}
    most, over = 0, []
    for at, step, run_id, event in moments:
        if step < 0:
            holding.pop(run_id, None)
            continue
        holding[run_id] = event
        most = max(most, len(holding))
        if len(holding) > size:
            who = ", ".join(f"{e} run {r}" for r, e in sorted(holding.items()))
            over.append(f"{len(holding)} holders of {POOL} at {at:.3f}: {who}")
    return most, over


def render(found: Measures) -> list[tuple[str, str]]:
    """(measure, value with MET / NOT MET against its goal) rows."""

    def row(name: str, items: list[str], base: str) -> tuple[str, str]:
        return (name, f"{len(items)} of {base}   goal 0   {'MET' if not items else 'NOT MET'}")

    c = found.counts
    reboot_met = "MET" if found.reboot_runs == found.fleet_starts else "NOT MET"
    return [
        row(
            "occurrences run twice (any attempt, after a command that ended)",
            found.run_twice,
            f"{c['commands']} commands",
        ),
        row(
            "dedupe keys acted on twice",
            found.keys_twice,
            f"{c['keys']} keys ({c['repeated keys']} repeated, {c['interleaved pairs']} interleaved pairs)",
        ),  # fmt: skip
        row("runs whose log is not where the command wrote", found.log_elsewhere, f"{c['commands']} commands"),
        row("finished runs without their output", found.without_output, f"{c['finished runs']} finished runs"),
        row("lost runs whose command had ended", found.lost_after_end, f"{c['lost runs']} lost runs"),
        row("overlapping runs of a queue/skip event", found.overlaps, f"{c['queue/skip commands']} commands"),
        (
            "@reboot runs per fleet start",
            f"{found.reboot_runs} runs, {found.fleet_starts} fleet start(s)   goal 1 each   {reboot_met}",
        ),  # fmt: skip
        row("SIGTERMed engines that did not exit 0", found.term_not_zero, f"{c['SIGTERMs']} SIGTERMs"),
        row("requests left unanswered", found.unanswered, f"{c['requests']} requests"),
        (
            f"most holders of the pool of {POOL_SIZE} at once (from the commands' own ledger)",
            f"{found.pool_most} over {c.get('pool commands', 0)} commands of {len(POOL_EVENTS)} events"
            f"   goal <= {POOL_SIZE}   {'MET' if found.pool_most <= POOL_SIZE and not found.pool_over else 'NOT MET'}",
        ),
    ]


def details(found: Measures, most: int = 8) -> list[str]:
    """The first few of each measure's findings, for the report."""
    out = []
    for name in ("run_twice", "keys_twice", "log_elsewhere", "without_output", "lost_after_end", "overlaps",
                 "term_not_zero", "unanswered", "pool_over"):  # fmt: skip
        out += [f"{name}: {item}" for item in getattr(found, name)[:most]]
    return out
