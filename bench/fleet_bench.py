"""Several engines on PostgreSQL: occurrences per second with 1 and 3 engine processes (no-op
callables and `true`), due->start lateness by the callable's own clock, and SQL statements
per occurrence as the server counted them (pg_stat_statements).

    uv run python -m bench.fleet_bench              # 2,000 occurrences per row
    uv run python -m bench.fleet_bench --quick      # 200 per row, a smoke run
    uv run python -m bench.fleet_bench --top 15     # and each row's 15 most frequent statements
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.evman_side import BENCH_DIR, at_schedule
from bench.stats import percentile
from evman.engine.definitions import catalog
from evman.engine.model import Defaults, Definitions, EventSpec
from evman.engine.store import open_store
from tests.outside import ROOT, evman_argv
from tests.pgserver import PgServer

STAMPS_ENV = "EVMAN_BENCH_STAMPS"
GOAL_OCC_PER_S = 1000.0
GOAL_STATEMENTS = 3.0


def stamp(ctx: object = None) -> None:
    """The bench's no-op callable: notes (event, when it really began) in an O_APPEND file."""
    line = f"{getattr(ctx, 'event', '')},{time.time():.6f}\n".encode()
    fd = os.open(os.environ[STAMPS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dataclass
class Row:
    kind: str
    engines: int
    occurrences: int
    completed: int
    per_s: float
    late_p50_ms: float | None
    late_p99_ms: float | None
    statements: float
    once: bool
    spread: str
    top: list[tuple[int, str]]
    """The statements the server ran most often: (calls, text)."""


def _spec(name: str, when: datetime, kind: str) -> EventSpec:
    if kind == "call":
        return EventSpec(name=name, call="bench.fleet_bench:stamp", cwd=BENCH_DIR, schedule=at_schedule(when))
    return EventSpec(name=name, run=("true",), cwd=BENCH_DIR, schedule=at_schedule(when))


def _sql(dsn: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name="bench") as conn:
        cur = conn.execute(query)
        return list(cur.fetchall()) if cur.description else []


def measure(server: PgServer, root: Path, kind: str, engines: int, n: int) -> Row:
    name = f"b_{kind}_{engines}"
    dsn = server.create_database(name)
    store = open_store(dsn)
    when = (datetime.now(UTC) + timedelta(seconds=6 + n / 2000)).replace(microsecond=0) + timedelta(seconds=1)
    catalog.save(
        store,
        Definitions(
            Defaults(timezone="UTC"), {}, tuple(_spec(f"e{i:05d}", when, kind) for i in range(n)), source="bench"
        ),
        now=datetime.now(UTC),
    )
    store.close()
    stamps = root / f"{name}.stamps"
    env = {**os.environ, STAMPS_ENV: str(stamps), "EVMAN_LOGS_DIR": str(root / f"{name}.logs")}
    procs = [
        subprocess.Popen(
            evman_argv("--no-ui", "--db", dsn, "--tick", "1"),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(engines)
    ]
    try:
        _wait(lambda: int(_sql(dsn, "SELECT count(*) FROM engines WHERE state = 'live'")[0][0]) == engines, 30)
        _sql(server.dsn("stats"), "SELECT pg_stat_statements_reset()")
        _wait(
            lambda: int(_sql(dsn, "/* bench */ SELECT count(*) FROM runs WHERE ended_at IS NOT NULL")[0][0]) >= n,
            60 + n / 50,
        )
        ended = _sql(dsn, "/* bench */ SELECT max(ended_at), count(*) FROM runs")
        owners = Counter(int(r[0] or 0) for r in _sql(dsn, "/* bench */ SELECT engine_id FROM runs"))
        top = [(int(c), " ".join(str(q).split())) for c, q in _sql(server.dsn("stats"), _STATEMENTS.format(name=name))]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    last = datetime.fromisoformat(str(ended[0][0]))
    late: list[float] = []
    seen: Counter[str] = Counter()
    if stamps.exists():
        for line in stamps.read_text().splitlines():
            event, at = line.split(",")
            seen[event] += 1
            late.append(max(0.0, float(at) - when.timestamp()) * 1000)
    span = (last - when).total_seconds()
    done = int(ended[0][1])
    once = done == n and (kind != "call" or (len(seen) == n and set(seen.values()) == {1}))
    return Row(
        kind,
        engines,
        n,
        done,
        done / span if span > 0 else float("inf"),
        percentile(late, 50) if late else None,
        percentile(late, 99) if late else None,
        sum(c for c, _ in top) / n,
        once,
        "/".join(str(c) for _, c in sorted(owners.items())),
        top,
    )


_STATEMENTS = (
    "SELECT calls, query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE d.datname = '{name}' AND s.query NOT LIKE '%%bench%%' "
    "AND s.query NOT LIKE '%%pg_stat_statements%%' ORDER BY calls DESC"
)


def _wait(check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: not done after {timeout_s:.0f} s")
        time.sleep(0.1)


def render(rows: list[Row]) -> str:
    lines = [
        "| work | engines | occurrences/s | due->start p50 / p99 (callable's clock) | SQL statements per occurrence | runs per engine | exactly once |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        late = "n/a (`true`)" if r.late_p50_ms is None else f"{r.late_p50_ms:.0f} / {r.late_p99_ms:.0f} ms"
        lines.append(
            f"| {r.kind} | {r.engines} | {r.per_s:,.0f} | {late} | {r.statements:.2f} | {r.spread} | "
            f"{'yes' if r.once else 'NO'} |"
        )
    lines += ["", verdict(rows)]
    return "\n".join(lines)


def verdict(rows: list[Row]) -> str:
    """The goals, judged from the measured rows (a goal without its row is NOT MET)."""
    calls3 = [r.per_s for r in rows if r.kind == "call" and r.engines == 3]
    worst = max((r.statements for r in rows), default=float("inf"))
    rate = f"{calls3[0]:,.0f}" if calls3 else "not measured"
    return (
        f"goal >= {GOAL_OCC_PER_S:,.0f} noop occurrences/s across 3 engines: {rate} "
        f"({'MET' if calls3 and calls3[0] >= GOAL_OCC_PER_S else 'NOT MET'}); "
        f"goal <= {GOAL_STATEMENTS:g} statements per occurrence: worst {worst:.2f} "
        f"({'MET' if worst <= GOAL_STATEMENTS else 'NOT MET'})"
    )


def render_top(row: Row, count: int) -> str:
    """The statements a row's server ran most, per occurrence: where the count comes from."""
    lines = [f"{row.kind} x{row.engines}: {row.statements:.2f} statements per occurrence"]
    lines += [f"  {calls / row.occurrences:6.3f}  {calls:6d}  {text[:150]}" for calls, text in row.top[:count]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="also print each row's N most frequent statements (per occurrence, calls, text)",
    )
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.events
    root = Path(tempfile.mkdtemp(prefix="evman-fleet-bench-"))
    server = PgServer(options="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all").start()
    try:
        server.create_database("stats")
        _sql(server.dsn("stats"), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = []
        for kind in ("call", "true"):
            for engines in (1, 3):
                rows.append(measure(server, root, kind, engines, n))
                print(f"  {kind} x{engines}: {rows[-1].per_s:,.0f}/s", flush=True)
        for row in rows if args.top else []:
            print(render_top(row, args.top))
        print(render(rows))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
