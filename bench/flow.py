"""W4: 20 layers of 10 no-op events, each layer requiring all of the previous one."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench import jobs
from bench.evman_side import BENCH_DIR, EngineThread, at_schedule, due_in, load, read_runs, wait_finished
from evman.engine.model import EventSpec, RunState
from evman.engine.store import open_store

LAYERS = 20
WIDTH = 10


def names(layer: int, width: int) -> list[str]:
    return [f"l{layer:02d}-{i:02d}" for i in range(width)]


def flow_specs(layers: int, width: int, when_iso: str) -> list[EventSpec]:
    specs = []
    for layer in range(layers):
        for name in names(layer, width):
            if layer == 0:
                specs.append(EventSpec(name=name, call="bench.jobs:noop", cwd=BENCH_DIR, schedule=when_iso))
            else:
                requires = " and ".join(f"success({up})" for up in names(layer - 1, width))
                specs.append(EventSpec(name=name, call="bench.jobs:noop", cwd=BENCH_DIR, requires=requires))
    return specs


def evman_flow(tmp: Path, layers: int = LAYERS, width: int = WIDTH) -> float:
    """Seconds from layer 0 due to the last run of the last layer finished."""
    path = tmp / "evman-flow.db"
    store = open_store(path)
    when = due_in(1.0)
    load(store, flow_specs(layers, width, at_schedule(when)))
    store.close()
    jobs.reset()
    engine = EngineThread(path)
    engine.start()
    try:
        done = wait_finished(path, layers * width, timeout_s=60)
    finally:
        engine.stop()
    rows = read_runs(path)
    ok = [r for r in rows if r.state == RunState.SUCCEEDED]
    if done < layers * width or len(ok) != layers * width or len({r.event for r in ok}) != len(ok):
        raise RuntimeError(f"evman flow: {len(ok)} of {layers * width} succeeded once")
    return max(r.ended_at.timestamp() for r in ok if r.ended_at) - when.timestamp()


def huey_flow(tmp: Path, layers: int = LAYERS, width: int = WIDTH) -> float:
    """The same DAG in Huey: each layer is a chord (group.then) whose callback, once all 10
    members finished, enqueues the next layer's chord. A chord's callback is one task, so a
    layer-to-layer "all of" needs this barrier task per layer; Huey has no many-to-many edge."""
    from huey import group

    from bench.peers import huey_consumer, make_huey

    huey = make_huey(tmp / "huey-flow.db")
    done = threading.Event()
    finished: list[float] = []

    @huey.task()
    def step(key: str) -> bool:
        jobs.record(key)
        return True

    @huey.task()
    def barrier(layer: int, _results: Any) -> None:  # a chord appends its members' results
        if layer >= layers:
            finished.append(time.time())
            done.set()
            return
        enqueue_layer(layer)

    def enqueue_layer(layer: int) -> None:
        members = [step.s(name) for name in names(layer, width)]
        huey.enqueue(group(members).then(barrier, layer + 1))

    jobs.reset()
    with huey_consumer(huey):
        time.sleep(0.3)  # let the consumer's workers settle into polling, as a running service is
        started = time.time()
        enqueue_layer(0)
        if not done.wait(60):
            raise RuntimeError("Huey's flow did not finish in 60 s")
    huey.storage.close()
    keys = [k for k, _, _ in jobs.calls]
    if len(keys) != layers * width or len(set(keys)) != len(keys):
        raise RuntimeError(f"Huey flow: {len(keys)} calls for {layers * width} tasks")
    last = max(e for _, _, e in jobs.calls)
    return max(last, finished[0]) - started
