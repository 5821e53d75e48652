"""What the train and sweep steps share: the engine settings of a step config, the progress
line, the probe-size check, and training a batch of specs under a parent run, finishing each run
as its group ends."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from underspec import tracking
from underspec.base import interrupts
from underspec.base.progress import Progress, Tally
from underspec.spec.config import ConfigError
from underspec.spec.settings import shared_of
from underspec.training.artifacts import Staged, staging_root
from underspec.training.data import MNISTTensors, dataset_digest
from underspec.training.engine import EngineSettings, RunSpec, resolve_device
from underspec.training.parallel import iter_train


def settings_of(cfg) -> EngineSettings:
    """The engine settings of a step config: its shared run settings and device (threads: the
    engine's fixed 1)."""
    return EngineSettings(**asdict(shared_of(cfg)), device=cfg.device)


def progress(runs: int, epochs: int) -> Progress:
    """A training batch's progress: model-epochs with ETA, and runs done / total: a bar on a
    terminal, a line every 10 runs or 60 s in a log (a sweep's: sweep.progress_of)."""
    return Progress("train", Tally(runs * epochs, "model-epoch"), Tally(runs, "runs"))


@dataclass
class TrainBatch:
    """What every run of one batch shares: the parent run, MNIST (its folder and the tensors), the
    engine settings and worker processes, the sweep tag, extra tags (a sweep worker's id), the
    caller's progress (a sweep's; None: one of this batch) and what to call as each run finishes
    (with its result and run id)."""

    parent: tracking.Parent
    data_dir: Path
    data: MNISTTensors
    settings: EngineSettings
    workers: int
    sweep: str = ""
    extra_tags: dict[str, str] = field(default_factory=dict)
    bar: Progress | None = None
    on_done: Callable[[Staged, str], None] | None = None

    def record(self) -> tracking.TrainRecord:
        """What each of the batch's training runs records besides its grid point."""
        s = self.settings
        env = tracking.environment_tags(torch.__version__, str(resolve_device(s.device)))
        return tracking.TrainRecord(s, s.threads, env, self.data_dir, dataset_digest(self.data_dir),
                                    self.sweep, self.extra_tags)


def train_specs(batch: TrainBatch, specs: list[RunSpec]) -> dict[RunSpec, str]:
    """Create one RUNNING run per spec under the batch's parent, train them, finish each as its
    group ends; returns each spec's run id. An error or interruption ends the unfinished runs
    FAILED or KILLED."""
    rec, client = batch.record(), batch.parent.client
    run_ids = {sp: tracking.create_train_run(batch.parent, sp, rec) for sp in specs}
    pending = set(run_ids.values())
    staging = staging_root()
    own = batch.bar is None
    bar = batch.bar or progress(len(specs), batch.settings.epochs)
    try:
        with bar if own else nullcontext():
            for results in iter_train(specs, batch.data_dir, batch.data, batch.settings, batch.workers,
                                      _ticker(bar), staging):
                for r in results:
                    tracking.finish_train_run(client, run_ids[r.spec], r)
                    pending.discard(run_ids[r.spec])
                    bar.update(points=1)
                    if batch.on_done:
                        batch.on_done(r, run_ids[r.spec])
                    interrupts.check()
    except BaseException as exc:
        killed = interrupts.pending() or isinstance(exc, KeyboardInterrupt)
        tracking.end_runs(client, sorted(pending), tracking.KILLED if killed else tracking.FAILED,
                          "interrupted" if killed else tracking.error_line(exc))
        if killed and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt("interrupted") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_ids


def _ticker(bar: Progress) -> Callable[[int], None]:
    """What the engine calls between epochs (a safe point to stop at): n model-epochs done."""

    def tick(n: int) -> None:
        bar.update(n)
        interrupts.check()

    return tick


def check_probe(cfg, data: MNISTTensors) -> None:
    """probe_size against the test set actually loaded: refused before anything is created."""
    if cfg.probe_size > len(data.test_y):
        raise ConfigError("probe_size", cfg.probe_size, f"the test set has only {len(data.test_y)} images")

