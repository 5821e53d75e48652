"""The artifact files of a training run: names, format version, atomic writing. No MLflow here:
worker processes write these files themselves, so only small metadata crosses process bounds."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from underspec.base.locks import pid_alive
from underspec.spec.settings import FORMAT_VERSION
from underspec.training.engine import RunResult, RunSpec

TRAJECTORY = "trajectory.npz"
EMBEDDINGS = "embeddings.npz"


@dataclass
class Staged:
    """A trained configuration whose artifacts are written in `folder`, ready to be logged."""

    spec: RunSpec
    metrics: dict[str, np.ndarray]  # name -> (E,) for epochs 1..E
    folder: Path

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temporary name, then rename: a reader never sees half a file, and a failed
    write (a full disk) leaves nothing behind."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def replaced_dir(final: Path) -> Iterator[Path]:
    """A fresh sibling folder to write into; on success it takes final's place (the previous
    contents are removed only then), on failure it is removed and final is untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield tmp
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
        if final.exists():
            os.replace(final, old)  # two renames: no space is needed, so a full disk cannot stop them
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


STAGING_PREFIX = "underspec-staging-"


def remove_stale_staging() -> None:
    """Remove the staging folders left by processes that no longer exist (a SIGKILL gives no
    chance to clean up). Every step that may train calls it when it starts, whether or not it
    then trains: a sweep that finds its grid complete must not leave a killed worker's folder."""
    for old in Path(tempfile.gettempdir()).glob(STAGING_PREFIX + "*"):
        pid = old.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def staging_root() -> Path:
    """A private folder for this process's staged artifacts (stale ones removed first)."""
    remove_stale_staging()
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-"))


def stage(result: RunResult, root: Path) -> Staged:
    """Write one result's trajectory.npz and embeddings.npz into a new folder under root."""
    folder = Path(root) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    save_npz(folder / TRAJECTORY, {**result.trajectory, "format_version": np.array(FORMAT_VERSION)})
    save_npz(folder / EMBEDDINGS, result.embeddings)
    return Staged(result.spec, result.metrics, folder)
