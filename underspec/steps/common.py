"""What the train and sweep steps share: the engine settings of a step config, the progress
line, the probe-size check, and training a batch of specs under a parent run, finishing each run
as its group ends."""
from __future__ import annotations

import shutil
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

from underspec import tracking
from underspec.base import interrupts
from underspec.base.progress import Progress, Tally
from underspec.spec.config import ConfigError
from underspec.spec.settings import shared_of
from underspec.training.artifacts import staging_root
from underspec.training.data import MNISTTensors
from underspec.training.engine import EngineSettings, RunSpec, resolve_device
from underspec.training.parallel import iter_train


def settings_of(cfg) -> EngineSettings:
    """The engine settings of a step config: its shared run settings and device (threads: the
    engine's fixed 1)."""
    return EngineSettings(**asdict(shared_of(cfg)), device=cfg.device)


def progress(runs: int, epochs: int, desc: str = "train", total_points: int = 0, done: int = 0) -> Progress:
    """Model-epochs with ETA, and runs (or a sweep's grid points) done / total: a bar on a
    terminal, a line every 10 runs or 60 s in a log."""
    return Progress(desc, Tally(runs * epochs, "model-epoch"),
                    Tally(total_points or runs, "runs" if not total_points else "points", done))


def train_specs(parent: tracking.Parent, specs: list[RunSpec], data_dir: Path, data: MNISTTensors,
                s: EngineSettings, workers: int, sweep: str = "", on_done=None,
                extra_tags: dict | None = None, bar: Progress | None = None) -> dict[RunSpec, str]:
    """Create one RUNNING run per spec under `parent`, train them, finish each as its group ends;
    `bar`: the caller's progress (a sweep's), else one of this batch."""
    device = str(resolve_device(s.device))
    run_ids = {sp: tracking.create_train_run(parent, sp, s, device, sweep, extra_tags, data_dir) for sp in specs}
    pending = set(run_ids.values())
    staging = staging_root()

    own = bar is None
    bar = bar or progress(len(specs), s.epochs)

    def tick(n: int) -> None:  # called between epochs: a safe point to stop at
        bar.update(n)
        interrupts.check()

    try:
        with bar if own else nullcontext():
            for results in iter_train(specs, data_dir, data, s, workers, tick, staging):
                for r in results:
                    tracking.finish_train_run(parent.client, run_ids[r.spec], r)
                    pending.discard(run_ids[r.spec])
                    bar.update(points=1)
                    if on_done:
                        on_done(r, run_ids[r.spec])
                    interrupts.check()
    except BaseException as exc:
        killed = interrupts.pending() or isinstance(exc, KeyboardInterrupt)
        tracking.end_runs(parent.client, sorted(pending), tracking.KILLED if killed else tracking.FAILED,
                          "interrupted" if killed else tracking.error_line(exc))
        if killed and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt("interrupted") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_ids


def check_probe(cfg, data: MNISTTensors) -> None:
    """probe_size against the test set actually loaded: refused before anything is created."""
    if cfg.probe_size > len(data.test_y):
        raise ConfigError("probe_size", cfg.probe_size, f"the test set has only {len(data.test_y)} images")
