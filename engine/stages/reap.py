"""Stage 3: judge the outcomes the executors queued: exit code, kills, output checks."""

from __future__ import annotations

import queue

from evman.engine.model import RunState
from evman.engine.running.executors import Outcome
from evman.engine.running.output_checks import first_failure, verify_outputs
from evman.engine.tick import lifecycle
from evman.engine.tick.active import ActiveRun
from evman.engine.tick.context import Tick


def reap(tick: Tick, outcomes: queue.SimpleQueue[Outcome]) -> None:
    """Judge every outcome that arrived. Moves tick.now past the latest end seen, so that
    what starts next never starts before the run it follows ended."""
    while batch := _drain(outcomes):
        tick.now = max([tick.now, *(o.ended_at for o in batch)])
        for outcome in batch:
            run = tick.runs.get(outcome.run_id)
            if run is None:
                continue
            if outcome.phase == "prepare":
                _prepared(tick, run, outcome)
            else:
                judge(tick, run, outcome)


def _drain(outcomes: queue.SimpleQueue[Outcome]) -> list[Outcome]:
    batch = []
    while True:
        try:
            batch.append(outcomes.get_nowait())
        except queue.Empty:
            return batch


def _prepared(tick: Tick, run: ActiveRun, outcome: Outcome) -> None:
    run.preparing = False
    if outcome.exit_code == 0 and outcome.error is None:
        run.needs_prepare = False
        run.waiting_reason = None
        tick.batch.run_prepared(run.id)
        return
    why = outcome.error or f"exit {outcome.exit_code}"
    lifecycle.finish(
        tick,
        run,
        RunState.FAILED,
        tick.now,
        exit_code=outcome.exit_code,
        reason=f"prepare failed ({why}); retries stopped",
        final=True,
    )


def judge(tick: Tick, run: ActiveRun, outcome: Outcome) -> None:
    """The state a finished run ends in, and why."""
    ended = outcome.ended_at
    killed_by = outcome.killed_by or run.killed_by
    if killed_by is not None:
        # the engine's own kills (runtime max, timeout) are failures; an operator's are kills
        state = RunState.FAILED if killed_by.startswith(("runtime max", "timeout")) else RunState.KILLED
        lifecycle.finish(
            tick, run, state, ended, exit_code=outcome.exit_code, reason=f"killed: {killed_by}", judged=True
        )
        return
    if (
        outcome.error is not None
        and outcome.exit_code is None
        and run.state is RunState.RUNNING
        and outcome.error.startswith("exit status unknown")
    ):
        lifecycle.finish(tick, run, RunState.LOST, ended, reason=f"lost: {outcome.error}", judged=True)
        return
    if outcome.error is not None or outcome.exit_code != 0:
        reason = outcome.error or f"exit code {outcome.exit_code}"
        lifecycle.finish(tick, run, RunState.FAILED, ended, exit_code=outcome.exit_code, reason=reason, judged=True)
        return
    _judge_outputs(tick, run, outcome)


def _judge_outputs(tick: Tick, run: ActiveRun, outcome: Outcome) -> None:
    spec = tick.view.spec(run.event)
    ended = outcome.ended_at
    checks = verify_outputs(spec.outputs, spec.cwd, run.started_at, ended, since_ns=outcome.since_ns) if spec else []
    bad = first_failure(checks)
    if bad is not None:
        lifecycle.finish(tick, run, RunState.FAILED, ended, exit_code=0, reason=bad.detail, checks=checks, judged=True)
    else:
        lifecycle.finish(tick, run, RunState.SUCCEEDED, ended, exit_code=0, checks=checks, judged=True)
