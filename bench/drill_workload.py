"""The fleet drill's definitions: twenty-four events of the kinds a fleet must keep right under
faults (four of them share a pool of 2), and the ledger every command writes.

Each command appends two lines to one ledger opened with O_APPEND (the shell's >>), so the drill
sees what really ran whatever the database says:

    start,<event>,<scheduled_for>,<run id>,<attempt>,<pid>,<supervisor pid>,<unix time>,<its stdout>
    end,<event>,<scheduled_for>,<run id>,<attempt>,<pid>,<supervisor pid>,<unix time>,<exit code>

`<its stdout>` is where the command's output really goes (/proc/self/fd/1): the drill compares it
with the run's recorded log_path. Each command also prints `out-<run id>` to its output, which the
run's output_tail must hold once it finished.

The commands of the pool's events write their two lines under a lock on the ledger (flock): the
lines of the pool's holders are in the order they happened, each with the time it was written
inside the lock, so the drill counts how many held the pool at once from the commands' own word.
A command starts after its run took its slot and writes its end line before it gives it back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT_EVERY_S: Final = 2
POOL: Final = "warehouse"
POOL_SIZE: Final = 2
POOL_EVENTS: Final = ("p0", "p1", "p2", "p3")
"""uses = ["warehouse"], all due together every 2 seconds, 0.5 to 2 s each: often more due than slots."""
QUEUE_EVENTS: Final = ("q-long", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "req")
"""concurrency = "queue": never two of one event running at once, across engines and takeovers."""
SKIP_EVENTS: Final = ("k-skip", "lost-rerun", "r-retry", "m-once", *POOL_EVENTS)
"""concurrency = "skip" (the default)."""
BOOT_EVENT: Final = "boot"
REQUEST_EVENT: Final = "req"


@dataclass(frozen=True)
class Work:
    """How long a command takes, from its run id (the same run takes the same time): lo..hi s."""

    lo_s: float
    hi_s: float

    def sleep(self) -> str:
        """A POSIX shell `sleep` of lo + (run id * 7919 mod span) hundredths."""
        span = max(1, round((self.hi_s - self.lo_s) * 100))
        base = round(self.lo_s * 100)
        return f"W=$(( (EVMAN_RUN_ID * 7919) % {span} + {base} )); sleep $(printf '%d.%02d' $((W / 100)) $((W % 100)))"


def command(ledger: Path, work: Work, exit_code: str = "0", *, locked: bool = False) -> str:
    """The shell of every event: ledger start line, output, the work, ledger end line, exit.
    `locked`: each line written, and its time taken, holding an exclusive flock on the ledger."""
    fields = '"$EVMAN_EVENT" "$EVMAN_SCHEDULED_FOR" "$EVMAN_RUN_ID" "$EVMAN_ATTEMPT" "$$" "$PPID"'

    def append(line: str) -> str:
        if locked:  # fd 9 is the ledger opened O_APPEND; the lock goes when the group closes it
            return f"{{ flock 9; {line} >&9; }} 9>> {ledger}; "
        return f"{line} >> {ledger}; "

    start = f'printf \'start,%s,%s,%s,%s,%s,%s,%s,%s\\n\' {fields} "$(date +%s.%N)" "$(readlink /proc/$$/fd/1)"'
    end = f'printf \'end,%s,%s,%s,%s,%s,%s,%s,%s\\n\' {fields} "$(date +%s.%N)" "$C"'
    return f'C={exit_code}; {append(start)}echo "out-$EVMAN_RUN_ID"; {work.sleep()}; {append(end)}exit $C'


def workload(ledger: Path, *, roots: int = 7, chains: int = 3) -> str:
    """Twenty-four events: `roots` second-level schedules (queue, misfire all) of which the first
    `chains` start a chain of two; a long queued one; a skipped one; a retried one; one rerun
    when lost; one whose missed occurrences fold into one; @reboot; one only requests trigger;
    four that share the pool of 2."""
    out = ["[defaults]", 'timezone = "UTC"', "", "[pools]", f"{POOL} = {POOL_SIZE}", ""]

    def event(name: str, work: Work, exit_code: str = "0", **keys: str) -> None:
        shell = command(ledger, work, exit_code, locked=name in POOL_EVENTS)
        out.extend(
            ["[[event]]", f'name = "{name}"', f"shell = '''{shell}'''", *(f"{k} = {v}" for k, v in keys.items())]
        )
        out.append("")

    for i in range(roots):
        follow = f'["c{i}-1"]' if i < chains else "[]"
        event(
            f"s{i}",
            Work(0.3, 0.3),
            schedule=f'"every {ROOT_EVERY_S} seconds"',
            concurrency='"queue"',
            misfire='"all"',
            on_success=follow,
        )
        if i < chains:
            event(f"c{i}-1", Work(0.2, 0.4), concurrency='"queue"', misfire='"all"', on_success=f'["c{i}-2"]')
            event(f"c{i}-2", Work(0.05, 0.3), concurrency='"queue"', misfire='"all"')
    event("q-long", Work(0.05, 3.0), schedule='"every 2 seconds"', concurrency='"queue"', misfire='"once"')
    event("k-skip", Work(0.5, 2.5), schedule='"every 1 seconds"', concurrency='"skip"', misfire='"skip"')
    event(
        "r-retry",
        Work(0.1, 0.6),
        exit_code='$([ "$EVMAN_ATTEMPT" = 1 ] && echo 1 || echo 0)',
        schedule='"every 3 seconds"',
        misfire='"skip"',
        on_failure='{ retries = 1, backoff = "1s" }',
    )
    event("lost-rerun", Work(1.0, 4.0), schedule='"every 3 seconds"', misfire='"skip"', on_lost='"rerun"')
    event("m-once", Work(0.1, 0.5), schedule='"every 2 seconds"', misfire='"once"')
    event(BOOT_EVENT, Work(0.1, 0.2), schedule='"@reboot"')
    event(REQUEST_EVENT, Work(0.05, 0.5), concurrency='"queue"')
    for name in POOL_EVENTS:
        event(name, Work(0.5, 2.0), schedule='"every 2 seconds"', misfire='"skip"', uses=f'["{POOL}"]')
    return "\n".join(out)


def follower_of(event: str, chains: int) -> str | None:
    """The event a success of `event` starts (its chain's next), if any."""
    if event.startswith("s") and event[1:].isdigit():
        return f"c{event[1:]}-1" if int(event[1:]) < chains else None
    if event.startswith("c") and event.endswith("-1"):
        return event[:-2] + "-2"
    return None
