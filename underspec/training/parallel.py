"""Spread engine work over processes, one intra-op thread each: the specs are split into chunks
of one engine group each (engine.group_key: they share a minibatch stream), a group split further
when there are fewer groups than workers; each chunk trains fused in one worker.

Results never depend on the number of workers: a configuration's trajectory is independent of
the group it is fused with (see engine), and every process computes with the same thread count.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from underspec.base.stdlib_shim import pool_processes
from underspec.training.artifacts import Staged, stage
from underspec.training.data import MNISTTensors, load_mnist
from underspec.training.engine import EngineSettings, RunResult, RunSpec, groups, train_group

# Modules the forkserver imports once, so that its workers fork with them loaded. The server
# skips a name that fails to import without a word (then each worker pays seconds for it):
# tests/test_preload.py imports every one of them.
PRELOAD = ("__main__", "underspec.training.engine", "underspec.training.data", "torchvision.datasets")


def plan_chunks(specs: Sequence[RunSpec], workers: int) -> list[list[RunSpec]]:
    """Group specs by engine.group_key (they share minibatches), splitting groups so every worker
    has work."""
    by_group = groups(specs)
    # Enough chunks to keep every worker busy to the end: at least one per worker, and a
    # multiple of the worker count when the groups alone would leave a worker idle in the last round.
    n = max(1, len(by_group))
    parts = math.ceil(workers / n) if n < workers else (1 if n % workers == 0 else workers)
    chunks = []
    for group in by_group.values():
        k = min(parts, len(group))
        size = math.ceil(len(group) / k)
        chunks += [group[i : i + size] for i in range(0, len(group), size)]
    return chunks


_WORKER_DATA: dict[str, MNISTTensors] = {}  # a worker process loads MNIST once


def _worker_train(chunk, data_dir: str, s: EngineSettings, queue, staging) -> list[RunResult | Staged]:
    if data_dir not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[data_dir] = load_mnist(data_dir)
    data = _WORKER_DATA[data_dir]
    results = train_group(chunk, data, s, lambda e: queue.put(len(chunk)))
    # Artifacts are written here, in the worker: only metrics and paths travel back.
    return [stage(r, staging) for r in results] if staging else results


def iter_train(specs: Sequence[RunSpec], data_dir: Path, data: MNISTTensors, s: EngineSettings,
               workers: int, tick: Callable[[int], None], staging: Path | None = None) -> Iterator[list]:
    """Yield the results of each chunk as it completes; tick(n) after every n model-epochs.
    With `staging`, results come as Staged (artifact files written under it), else RunResult."""
    chunks = plan_chunks(specs, workers)
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            n = len(chunk)
            results = train_group(chunk, data, s, lambda e: tick(n))  # noqa: B023 (called before n changes)
            yield [stage(r, staging) for r in results] if staging else results
        return
    # forkserver: workers fork from a clean server that has already imported torch (no OpenMP
    # pool inherited from this process, no per-worker import cost).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    with ctx.Manager() as manager:
        queue = manager.Queue()
        drain = threading.Thread(target=_drain, args=(queue, tick), daemon=True)
        drain.start()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        finished = False
        try:
            todo = {pool.submit(_worker_train, c, str(data_dir), s, queue, staging) for c in chunks}
            while todo:
                done, todo = wait(todo, timeout=0.5, return_when=FIRST_COMPLETED)
                tick(0)  # a safe point: lets an interrupt through while the workers train
                for fut in done:
                    yield fut.result()
            finished = True
        finally:
            if not finished:  # stopped early: do not wait for the chunks still training
                for proc in pool_processes(pool):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            queue.put(None)
            drain.join(timeout=5)


def _drain(queue, tick) -> None:
    """Forward the workers' epoch ticks; interrupts are the main thread's business."""
    while (n := queue.get()) is not None:
        try:
            tick(n)
        except KeyboardInterrupt:
            pass
